import numpy as np
import pytest
import torch

from tests.ml.tiny_models import save_tiny_causal_lm
from training.ml.backbone import load_causal_lm, load_tokenizer
from training.ml.data import PreferenceExample
from training.ml.features import reply_features
from training.ml.tokenization import tokenize_pairs

PROMPT = [{"role": "user", "content": "Say something kind."}]
PAIRS = [
    PreferenceExample(PROMPT, "You are doing great!", "Go away."),
    PreferenceExample("Greet me", "Hello, friend.", "No."),
    PreferenceExample([{"role": "user", "content": "x" * 80}], "Have a lovely day.", "Whatever, really."),
]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    path = save_tiny_causal_lm(tmp_path_factory.mktemp("lm"))
    return load_causal_lm(path).eval(), load_tokenizer(path)


def one_sequence(model, ids: list[int], prompt_len: int, layers):
    """Reference: the reply's features from its own unpadded sequence, the straightforward way."""
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    states = torch.stack([out.hidden_states[layer][0] for layer in layers])  # (L, T, H)
    logp = torch.log_softmax(out.logits[0, prompt_len - 1 : -1], -1)
    target = torch.tensor(ids[prompt_len:])
    return states[:, -1], states[:, prompt_len:].mean(1), logp.gather(-1, target[:, None]).sum().item()


def test_packed_pairs_give_each_reply_the_features_of_its_own_sequence(lm):
    model, tokenizer = lm
    layers = [0, 1, 2]
    # A small token budget forces several batches with padding; max_length 64 truncates the long prompt.
    feats = reply_features(model, tokenizer, PAIRS, layers=layers, max_length=64, batch_tokens=100)
    pairs = tokenize_pairs(tokenizer, PAIRS, max_length=64, is_encoder=False)
    assert feats.stats["truncated_prompts"] == 1
    for i in range(len(PAIRS)):
        for side, ids in ((feats.chosen, pairs.chosen[i]), (feats.rejected, pairs.rejected[i])):
            last, mean, logprob = one_sequence(model, ids, pairs.prompt_len[i], layers)
            np.testing.assert_allclose(side.last[i], last.numpy(), atol=1e-4)
            np.testing.assert_allclose(side.mean[i], mean.numpy(), atol=1e-4)
            assert side.logprob[i] == pytest.approx(logprob, abs=1e-3)
            assert side.reply_tokens[i] == len(ids) - pairs.prompt_len[i]


def test_it_reports_progress_and_rejects_layers_the_model_lacks(lm):
    model, tokenizer = lm
    seen = []
    reply_features(
        model, tokenizer, PAIRS, layers=[2], on_progress=lambda done, total: seen.append((done, total))
    )
    assert seen[-1] == (3, 3)
    with pytest.raises(ValueError, match="layers"):
        reply_features(model, tokenizer, PAIRS, layers=[3])
