"""The RL objectives and rollout helpers, each checked by hand on small literal tensors."""

import math

import pytest
import torch

from training.ml import rl_objectives as obj
from training.ml import rollouts as ro


def test_rloo_subtracts_the_mean_of_the_other_samples_of_the_same_prompt():
    rewards = torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, 6.0])  # two prompts, k = 3
    assert obj.rloo_advantages(rewards, 3).tolist() == [-1.5, 0.0, 1.5, -3.0, -3.0, 6.0]


def test_grpo_normalises_by_the_group_std():
    adv = obj.grpo_advantages(torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, 6.0]), 3)
    std2 = math.sqrt(12)  # deviations -2, -2, 4: unbiased variance 24 / 2
    expected = [-1 / 1.0001, 0.0, 1 / 1.0001, -2 / (std2 + 1e-4), -2 / (std2 + 1e-4), 4 / (std2 + 1e-4)]
    assert adv.tolist() == pytest.approx(expected, abs=1e-6)


def test_reinforce_weights_each_sequence_log_prob_by_its_advantage():
    logps = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss = obj.reinforce_loss(logps, torch.tensor([2.0, -1.0]), mask)
    assert loss.item() == pytest.approx(-(2 * -3.0 + -1 * -0.5) / 2)
    loss.backward()
    assert logps.grad.tolist() == [[-1.0, -1.0], [0.5, 0.0]]


def test_gae_with_lambda_one_is_the_return_minus_the_value():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    values = torch.tensor([[0.5, 0.5, 0.5], [1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # the second response has two tokens
    adv, returns = obj.gae(rewards, values, mask, gamma=1.0, lam=1.0)
    assert adv.tolist() == [[0.5, 0.5, 0.5], [1.0, 1.0, 0.0]]
    assert returns.tolist() == [[1.0, 1.0, 1.0], [2.0, 2.0, 0.0]]


def test_gae_with_lambda_zero_is_the_one_step_td_error():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    values = torch.tensor([[0.5, 0.5, 0.5], [1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv, _ = obj.gae(rewards, values, mask, gamma=0.5, lam=0.0)
    # r_t + gamma V_{t+1} - V_t, with no value past a response's end
    assert adv.tolist() == [[-0.25, -0.25, 0.5], [-0.5, 1.0, 0.0]]


def test_ppo_clips_the_ratio_on_the_side_the_advantage_pushes():
    ratio = torch.tensor([[1.5, 0.5, 1.05]])
    logps = ratio.log().requires_grad_(True)
    old = torch.zeros(1, 3)
    adv = torch.tensor([[1.0, 1.0, -1.0]])
    loss, clip_frac, _ = obj.ppo_policy_loss(logps, old, adv, torch.ones(1, 3), clip_range=0.2)
    # max(-A r, -A clip(r)): -1.2 (clipped at 1.2), -0.5 (unclipped: the pessimistic side), 1.05
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 1.05) / 3)
    assert clip_frac.item() == pytest.approx(2 / 3)
    loss.backward()
    # d/dlogp of -A r is -A r: no gradient through the clipped token
    assert logps.grad.tolist()[0] == pytest.approx([0.0, -0.5 / 3, 1.05 / 3])


def test_value_loss_takes_the_worse_of_the_clipped_and_unclipped_error():
    values, old, returns = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]]), torch.tensor([[2.0, 0.0]])
    mask = torch.ones(1, 2)
    clipped = obj.value_loss(values, old, returns, mask, clip_range=0.2)
    assert clipped.item() == pytest.approx(0.5 * ((0.7 - 2.0) ** 2 + 0.3**2) / 2)
    plain = obj.value_loss(values, old, returns, mask, clip_range=0.0)
    assert plain.item() == pytest.approx(0.5 * (1.0 + 0.0) / 2)


def test_soft_q_is_at_rest_where_the_policy_is_its_reference_and_no_reward_comes():
    logits = torch.tensor([[[0.3, -1.0], [2.0, 0.5]]])
    tokens = torch.tensor([[0, 1]])
    ref_logits = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    ref_lse = torch.logsumexp(logits, -1)
    for lam in (0.0, 0.5, 1.0):
        loss = obj.soft_q_loss(
            logits, tokens, ref_logits, ref_lse, torch.zeros(1, 2), torch.ones(1, 2), beta=0.5, lam=lam
        )
        assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_soft_q_backs_a_final_reward_up_one_step_or_all_the_way():
    logits = torch.zeros(1, 2, 2)  # the policy is its (uniform) reference
    tokens = torch.zeros(1, 2, dtype=torch.long)
    ref_logits, ref_lse = torch.zeros(1, 2), torch.full((1, 2), math.log(2))
    rewards, mask = torch.tensor([[0.0, 1.0]]), torch.ones(1, 2)
    one_step = obj.soft_q_loss(logits, tokens, ref_logits, ref_lse, rewards, mask, beta=0.5, lam=0.0)
    assert one_step.item() == pytest.approx(0.5 * (0.0 + 2.0**2) / 2)  # targets 0 (V = 0), r / beta = 2
    monte_carlo = obj.soft_q_loss(logits, tokens, ref_logits, ref_lse, rewards, mask, beta=0.5, lam=1.0)
    assert monte_carlo.item() == pytest.approx(0.5 * (2.0**2 + 2.0**2) / 2)


def test_soft_q_bootstraps_the_soft_value_and_subtracts_the_sampled_log_ratio():
    logits = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])  # the policy moved at the second position
    tokens = torch.tensor([[1, 0]])
    ref_logits, ref_lse = torch.zeros(1, 2), torch.full((1, 2), math.log(2))
    zero, mask = torch.zeros(1, 2), torch.ones(1, 2)
    v1 = math.log((math.e + 1) / 2)  # V(s_1) / beta = lse(logits) - lse(ref)
    log_ratio1 = 1.0 - v1  # log pi / pi_ref of the second token
    # q = [0, 1]; targets: [V(s_1), 0] one-step, [0 - log_ratio1, 0] Monte Carlo
    one = obj.soft_q_loss(logits, tokens, ref_logits, ref_lse, zero, mask, beta=1.0, lam=0.0)
    assert one.item() == pytest.approx(0.5 * (v1**2 + 1.0) / 2)
    mc = obj.soft_q_loss(logits, tokens, ref_logits, ref_lse, zero, mask, beta=1.0, lam=1.0)
    assert mc.item() == pytest.approx(0.5 * (log_ratio1**2 + 1.0) / 2)


def test_whitening_uses_only_the_masked_entries():
    x = torch.tensor([[1.0, 3.0], [5.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    sd = math.sqrt(8 / 3)
    assert obj.whiten(x, mask).flatten().tolist() == pytest.approx([-2 / sd, 0.0, 2 / sd, 0.0], abs=1e-5)


def test_the_adaptive_kl_coefficient_moves_at_most_twenty_percent_per_horizon():
    assert obj.adaptive_kl_coef(0.1, 12.0, target=6.0, horizon=1000, n_samples=100) == pytest.approx(0.102)
    assert obj.adaptive_kl_coef(0.1, 5.4, target=6.0, horizon=1000, n_samples=1000) == pytest.approx(0.09)


class _FixedLM:
    """generate() appends fixed tokens: 7 is EOS, 0 is pad."""

    def __init__(self, new):
        self.new = torch.tensor(new)

    def generate(self, input_ids, **kwargs):
        return torch.cat([input_ids, self.new], dim=1)


def test_samples_end_at_the_first_eos_and_flag_responses_cut_at_the_limit():
    lm = _FixedLM([[5, 7, 5], [5, 5, 5]])
    s = ro.sample(
        lm,
        [[3, 4], [9]],
        k=1,
        max_new_tokens=3,
        temperature=1.0,
        eos_id=7,
        pad_id=0,
        device=torch.device("cpu"),
    )
    assert s.input_ids.tolist() == [[3, 4, 5, 7, 0], [0, 9, 5, 5, 5]]  # left-padded prompt, then response
    assert s.attention_mask.tolist() == [[1, 1, 1, 1, 0], [0, 1, 1, 1, 1]]
    assert s.response_mask.tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    assert s.truncated.tolist() == [False, True]
    assert s.lengths.tolist() == [2.0, 3.0]


def test_response_log_probs_do_not_depend_on_the_left_padding(tiny_llama):
    from training.ml.policy import load_policy

    lm, _ = load_policy(tiny_llama)
    lm.eval()
    short, long, resp = [10, 11], [12, 13, 14, 15], [[16, 17], [18, 19]]

    def logps(prompts, responses):
        ids, mask = ro.left_pad(prompts, 0)
        r = torch.tensor(responses)
        s = ro.Samples(
            torch.cat([ids, r], 1),
            torch.cat([mask, torch.ones_like(r)], 1),
            ids.shape[1],
            torch.ones(r.shape),
            None,
        )
        with torch.no_grad():
            logits, _ = ro.response_logits(lm, s)
        return ro.token_logps(logits, r)

    together = logps([short, long], resp)
    alone = logps([short], resp[:1])
    assert together[0].tolist() == pytest.approx(alone[0].tolist(), abs=1e-5)
    with torch.no_grad():  # by hand: token t is predicted at position t - 1
        full = torch.log_softmax(lm(input_ids=torch.tensor([short + resp[0]])).logits[0], -1)
    assert alone[0].tolist() == pytest.approx([full[1, 16].item(), full[2, 17].item()], abs=1e-5)


def test_scores_are_plain_tensors_and_their_count_is_checked():
    t = ro.score(lambda p, r: [1, 2], ["p", "p"], ["a", "b"], device=torch.device("cpu"))
    assert t.tolist() == [1.0, 2.0] and not t.requires_grad
    with pytest.raises(ValueError, match="1 scores for 2"):
        ro.score(lambda p, r: [1], ["p", "p"], ["a", "b"], device=torch.device("cpu"))
