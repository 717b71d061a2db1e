"""Smoke tests: each bench runs end to end on tiny models and a tiny HH file and prints its JSON."""

import json

import pytest

from bench import active_learning, active_learning_select, common, dpo_vs_trl, reward_quality, reward_vs_trl
from tests.ml.tiny_models import save_tiny_causal_lm, save_tiny_encoder

REPLIES = ["Sure, here is how.", "No.", "I am happy to help!", "Go away.", "Let me explain.", "Whatever."]


@pytest.fixture(scope="module")
def hh_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "hh.jsonl"
    rows = []
    for i in range(30):
        good, bad = REPLIES[(2 * i) % 6], REPLIES[(2 * i + 1) % 6]
        prompt = f"\n\nHuman: Question number {i}?"
        rows.append({"chosen": f"{prompt}\n\nAssistant: {good}", "rejected": f"{prompt}\n\nAssistant: {bad}"})
    rows.append({"chosen": "\n\nHuman: " + "long " * 100 + "\n\nAssistant: ok", "rejected": "\n\nHuman: "
                 + "long " * 100 + "\n\nAssistant: no"})  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(autouse=True)
def quick_peak(monkeypatch):
    real = common.peak_gflops
    monkeypatch.setattr(common, "peak_gflops", lambda: real(size=256, seconds=0.2))


def check_result(result: dict, capsys) -> None:
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(result))
    for key in ("ours_pairs_per_s", "trl_pairs_per_s", "ratio", "ours_gflops", "peak_gflops"):
        assert result[key] > 0, key
    assert 0 <= result["ours_accuracy"] <= 1 and 0 <= result["trl_accuracy"] <= 1
    assert result["ratio"] == pytest.approx(result["ours_pairs_per_s"] / result["trl_pairs_per_s"])
    assert result["trl_kept_pairs"] == result["train_pairs"]  # TRL dropped nothing we kept


@pytest.mark.slow
def test_the_reward_bench_compares_both_trainers_on_the_same_kept_pairs(tmp_path, hh_file, capsys):
    model = save_tiny_encoder(tmp_path / "encoder")
    argv = ["--data", hh_file, "--model", model, "--pairs", 8, "--eval-pairs", 4, "--max-length", 96]
    result = reward_vs_trl.main([str(a) for a in [*argv, "--batch-size", 2, "--repeats", 1]])
    check_result(result, capsys)
    assert result["train_pairs"] == 8
    assert (
        "1 longer training pairs" in result["kept_examples"] or "1 longer held-out" in result["kept_examples"]
    )


@pytest.mark.slow
def test_the_dpo_bench_compares_both_trainers_on_the_same_kept_pairs(tmp_path, hh_file, capsys):
    model = save_tiny_causal_lm(tmp_path / "lm")
    argv = ["--data", hh_file, "--model", model, "--pairs", 6, "--eval-pairs", 4, "--max-length", 96]
    result = dpo_vs_trl.main([str(a) for a in [*argv, "--batch-size", 2, "--lr", "1e-3"]])
    check_result(result, capsys)
    assert result["trl_longest_sequence"] <= 96


@pytest.mark.slow
def test_the_quality_bench_trains_both_on_one_split(tmp_path, hh_file, capsys):
    model = save_tiny_encoder(tmp_path / "encoder")
    result = reward_quality.main(
        [str(a) for a in ["--data", hh_file, "--model", model, "--max-length", 48, "--batch-size", 4]]
    )
    assert json.loads(capsys.readouterr().out)["ours_accuracy"] == result["ours_accuracy"]
    assert (result["train_pairs"], result["eval_pairs"]) == (25, 6)
    assert result["trl_kept_pairs"] == 25  # truncated ids, so TRL drops nothing


@pytest.mark.parametrize(
    "bench", [reward_vs_trl, dpo_vs_trl, reward_quality, active_learning, active_learning_select]
)
def test_a_bench_without_its_data_is_skipped_cleanly(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--data", str(tmp_path / "absent.jsonl")])
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["skipped"] is True


def test_flops_count_matmul_parameters_and_attention_per_real_token():
    flops = common.train_flops(matmul_params=10, n_layers=2, d_model=4, sequences=[3, 5])
    # forward per token: 2 x 10 + 2 x 2 x len x 4; training = 3 x forward
    assert flops == 3 * (3 * (20 + 16 * 3) + 5 * (20 + 16 * 5))


def test_in_an_encoder_every_token_attends_to_the_whole_sequence():
    flops = common.train_flops(matmul_params=10, n_layers=2, d_model=4, sequences=[3, 5], bidirectional=True)
    # attention per token: scores and weighted values, 2 x len x d each, in each of 2 layers
    assert flops == 3 * (3 * (20 + 32 * 3) + 5 * (20 + 32 * 5))


def test_the_kept_pairs_fit_and_the_rest_are_counted(tmp_path, hh_file):
    from training.ml.backbone import load_tokenizer

    tokenizer = load_tokenizer(save_tiny_encoder(tmp_path / "encoder"))
    examples, skipped = common.load_pairs(hh_file)
    kept = common.keep_within(tokenizer, examples, max_length=96, is_encoder=True)
    assert skipped == 0
    assert kept.dropped == 1
    assert max(map(len, kept.chosen + kept.rejected)) <= 96


@pytest.mark.slow
def test_the_active_learning_bench_runs_both_queue_orders_on_lm_features(tmp_path, hh_file, capsys):
    model = save_tiny_causal_lm(tmp_path / "lm")
    argv = ["--data", hh_file, "--lm", model, "--lm-layer", 2, "--cache-dir", tmp_path / "cache"]
    argv += ["--features", "lm-last+lm-logprob+length", "--budget", 20, "--batch", 5, "--repeats", 2]
    result = active_learning.main([str(a) for a in argv])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    assert result["pairs"] == 31
    for order in ("uncertainty", "informative", "random"):
        assert [p["labels"] for p in result["curves"][order]] == [5, 10, 15, 20]
        assert all(0 <= p["accuracy"] <= 1 for p in result["curves"][order])
    for suffix in ("", "_informative"):
        fraction = result[f"label_fraction_to_match_random{suffix}"]
        assert fraction is None or 0 < fraction <= 1
        assert len(result[f"label_fraction_per_split_reached_and_held{suffix}"]) == 2
        assert 0 <= result[f"splits_never_reaching_random{suffix}"] <= 2
    assert len(list((tmp_path / "cache").glob("active_learning_lm_*.npz"))) == 1
    again = active_learning.main([str(a) for a in argv])  # the second run reads the cache
    assert again["embedding_seconds"] == 0
    assert again["curves"] == result["curves"]


@pytest.mark.slow
def test_the_selection_scores_candidates_by_random_order_alone(tmp_path, hh_file, capsys):
    model = save_tiny_causal_lm(tmp_path / "lm")
    argv = ["--data", hh_file, "--lm", model, "--cache-dir", tmp_path / "cache", "--layers", "2"]
    argv += ["--features", "length,lm-mean+lm-logprob", "--l2", "1,10", "--budget", 20, "--batch", 5]
    result = active_learning_select.main([str(a) for a in argv])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    # length uses no layer; lm-mean+lm-logprob reads the one layer cached for a 2-layer model.
    assert [(r["features"], r["lm_layer"], r["l2"]) for r in result["rows"]] == [
        ("length", None, 1.0),
        ("length", None, 10.0),
        ("lm-mean+lm-logprob", 2, 1.0),
        ("lm-mean+lm-logprob", 2, 10.0),
    ]
    assert result["best"]["random_final_accuracy"] == max(r["random_final_accuracy"] for r in result["rows"])
