from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0003_version_evaluation"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="api_key_env",
            field=models.CharField(
                blank=True,
                help_text="The workers' environment variable holding the endpoint's API key (never the key "
                "itself; training/endpoint_keys.py says which names are allowed). Empty: the global key.",
                max_length=200,
            ),
        ),
    ]
