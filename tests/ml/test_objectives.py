"""Each objective against a value worked out by hand on literal tensors."""

import math

import pytest
import torch

from training.ml.objectives import (
    bradley_terry_loss,
    contrastive_lm_loss,
    dpo_loss,
    info_nce_loss,
    ipo_loss,
    margin_ranking_loss,
)


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_bradley_terry_is_the_mean_negative_log_sigmoid_of_the_reward_gap():
    loss = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]))
    expected = (-math.log(sig(1.0)) - math.log(sig(-1.0))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_bradley_terry_subtracts_the_margin():
    loss = bradley_terry_loss(torch.tensor([2.0]), torch.tensor([1.0]), margin=torch.tensor([0.5]))
    assert loss.item() == pytest.approx(-math.log(sig(0.5)), rel=1e-6)


def test_bradley_terry_on_a_tie_is_symmetric_and_weights_average():
    tie = bradley_terry_loss(torch.tensor([3.0]), torch.tensor([1.0]), label_smoothing=0.5)
    assert tie.item() == pytest.approx(-0.5 * math.log(sig(2.0)) - 0.5 * math.log(sig(-2.0)), rel=1e-6)
    weighted = bradley_terry_loss(
        torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]), weights=torch.tensor([3.0, 1.0])
    )
    assert weighted.item() == pytest.approx((3 * -math.log(sig(1.0)) + -math.log(0.5)) / 4, rel=1e-6)


def test_margin_ranking_is_a_hinge_on_the_similarity_gap():
    # max(0, 0.5 - 0.9 + 0.1) = 0 and max(0, 0.5 - 0.2 + 0.4) = 0.7
    loss = margin_ranking_loss(torch.tensor([0.9, 0.2]), torch.tensor([0.1, 0.4]), margin=0.5)
    assert loss.item() == pytest.approx(0.35, rel=1e-6)


def test_info_nce_uses_the_other_keys_in_the_batch_as_negatives():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]])  # positives k0, k1; k2 an extra negative
    loss = info_nce_loss(q, k, temperature=0.5)
    # query 0 logits: [2, 2, 0] -> -log(e^2 / (2e^2 + 1))
    # query 1 logits: [0, 2, -2] -> -log(e^2 / (1 + e^2 + e^-2))
    q0 = -math.log(math.exp(2) / (2 * math.exp(2) + 1))
    q1 = -math.log(math.exp(2) / (1 + math.exp(2) + math.exp(-2)))
    assert loss.item() == pytest.approx((q0 + q1) / 2, rel=1e-6)


def test_contrastive_lm_is_a_softmax_over_sequence_log_likelihoods():
    logps = torch.tensor([[-1.0, -2.0, -3.0]])
    expected = -math.log(math.exp(-1) / (math.exp(-1) + math.exp(-2) + math.exp(-3)))
    assert contrastive_lm_loss(logps).item() == pytest.approx(expected, rel=1e-6)


def test_dpo_compares_log_ratios_against_the_reference():
    # logits = (-1 - -2) - (-3 - -2) = 2; loss = -log sigma(0.5 * 2)
    loss = dpo_loss(
        torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0]), beta=0.5
    )
    assert loss.item() == pytest.approx(-math.log(sig(1.0)), rel=1e-6)


def test_dpo_with_label_smoothing_mixes_in_the_flipped_label():
    loss = dpo_loss(
        torch.tensor([-1.0]),
        torch.tensor([-3.0]),
        torch.tensor([-2.0]),
        torch.tensor([-2.0]),
        beta=0.5,
        label_smoothing=0.1,
    )
    assert loss.item() == pytest.approx(-0.9 * math.log(sig(1.0)) - 0.1 * math.log(sig(-1.0)), rel=1e-6)


def test_ipo_regresses_the_log_ratio_gap_to_one_over_two_beta():
    # h = 2, 1/(2*0.25) = 2 -> 0; second pair h = 0 -> 4
    loss = ipo_loss(
        torch.tensor([-1.0, -1.0]),
        torch.tensor([-3.0, -1.0]),
        torch.tensor([-2.0, -1.0]),
        torch.tensor([-2.0, -1.0]),
        beta=0.25,
    )
    assert loss.item() == pytest.approx(2.0, rel=1e-6)


def test_ipo_pulls_a_tie_to_a_zero_gap():
    # h = 2 for both; the tie (eps = 0.5) targets 0 -> 4, the other targets 1/(2*0.25) = 2 -> 0
    loss = ipo_loss(
        torch.tensor([-1.0, -1.0]),
        torch.tensor([-3.0, -3.0]),
        torch.tensor([-2.0, -2.0]),
        torch.tensor([-2.0, -2.0]),
        beta=0.25,
        label_smoothing=torch.tensor([0.0, 0.5]),
    )
    assert loss.item() == pytest.approx(2.0, rel=1e-6)
