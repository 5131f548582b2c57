"""Each loss against values worked out by hand (math module, not the code under test)."""
import math

import pytest
import torch

from cots_core.losses import amf_keep_mask, amf_threshold, cmlm_loss, cmvm_loss, kl_alignment_loss, mcl_loss

E = math.e


def rows(*vectors):
    return torch.tensor(vectors, dtype=torch.float32)


def test_mcl_single_pair_with_queue():
    # v.t_m = 1 (positive), v.Q_T = 0 (one negative); tau = 0.5 -> each direction log(1 + e^-2)
    v, t = rows([1, 0]), rows([0, 1])
    v_m, t_m = rows([0, 1]), rows([1, 0])
    loss = mcl_loss(v, t, v_m, t_m, Q_I=rows([1, 0]), Q_T=rows([0, 1]), tau=0.5)
    assert loss.item() == pytest.approx(2 * math.log(1 + E ** -2), rel=1e-5)


def test_mcl_empty_queue_is_zero_and_not_nan():
    v, t = rows([1, 0], [0, 1]), rows([0, 1], [1, 0])
    empty = torch.zeros(0, 2)
    loss = mcl_loss(v, t, v, t, empty, empty, tau=0.07)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_mcl_two_pairs_partly_filled_queue():
    s = 1 / math.sqrt(2)
    v = rows([1, 0], [0, 1])
    t = rows([s, s], [0, 1])
    v_m = rows([1, 0], [s, s])
    t_m = rows([1, 0], [0, 1])
    q_i = rows([0, 1])
    q_t = rows([s, s])
    tau = 1.0
    # i2t: pair 0: pos v0.tm0=1, neg v0.qt=s ; pair 1: pos v1.tm1=1, neg v1.qt=s
    i2t = -(math.log(E / (E + E ** s)) + math.log(E / (E + E ** s))) / 2
    # t2i: pair 0: pos t0.vm0=s, neg t0.qi=s ; pair 1: pos t1.vm1=s, neg t1.qi=1
    t2i = -(math.log(E ** s / (E ** s + E ** s)) + math.log(E ** s / (E ** s + E))) / 2
    loss = mcl_loss(v, t, v_m, t_m, q_i, q_t, tau)
    assert loss.item() == pytest.approx(i2t + t2i, rel=1e-5)


def test_mcl_no_pair_is_defined_zero():
    empty = torch.zeros(0, 2, requires_grad=True)
    loss = mcl_loss(empty, empty, empty, empty, rows([1, 0]), rows([0, 1]), 0.07)
    assert loss.item() == 0.0
    loss.backward()  # stays connected to the graph


def paper_kl_float64(v, t, v_m, t_m, q_i, q_t, tau):
    """COTS sec. 3.2.3 written out with the math module, in float64, one pair at a time:
    D_I2T = [p(v, t_m), p(v, Q_T[1]), ...], D_T2I = [p(t, v_m), p(t, Q_I[1]), ...], each p a softmax
    over the pair's own similarity followed by the queue's; L = 1/(2B) sum_i KL(D_I2T||D_T2I) + KL(D_T2I||D_I2T)."""
    def dot(a, b):
        return sum(float(x) * float(y) for x, y in zip(a, b))

    def softmax(scores):
        top = max(scores)
        exps = [math.exp((s - top) / tau) for s in scores]
        return [e / sum(exps) for e in exps]

    total = 0.0
    for i in range(len(v)):
        d_i2t = softmax([dot(v[i], t_m[i])] + [dot(v[i], q) for q in q_t])
        d_t2i = softmax([dot(t[i], v_m[i])] + [dot(t[i], q) for q in q_i])
        total += sum(p * math.log(p / q) for p, q in zip(d_i2t, d_t2i))
        total += sum(q * math.log(q / p) for p, q in zip(d_i2t, d_t2i))
    return total / (2 * len(v))


def random_unit_rows(generator, n, d):
    return torch.nn.functional.normalize(torch.randn(n, d, generator=generator), dim=1)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("tau", [0.01, 0.05, 0.5])
def test_kl_alignment_matches_the_papers_equations_in_float64(seed, tau):
    g = torch.Generator().manual_seed(seed)
    v, t, v_m, t_m = (random_unit_rows(g, 3, 8) for _ in range(4))
    q_i, q_t = random_unit_rows(g, 5, 8), random_unit_rows(g, 5, 8)
    expected = paper_kl_float64(v.tolist(), t.tolist(), v_m.tolist(), t_m.tolist(), q_i.tolist(), q_t.tolist(), tau)
    loss = kl_alignment_loss(v, t, v_m, t_m, q_i, q_t, tau)
    assert loss.item() == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_kl_alignment_hand_worked():
    # D_I2T = softmax([v.t_m, v.Q_T]) = softmax([1, 0]); D_T2I = softmax([t.v_m, t.Q_I]) = softmax([0, 1]).
    # KL both ways = 2 (a - b) with a = e/(e+1), b = 1/(e+1); the loss is half their sum: a - b
    v, t = rows([1, 0]), rows([0, 1])
    v_m, t_m = rows([1, 0]), rows([1, 0])
    loss = kl_alignment_loss(v, t, v_m, t_m, Q_I=rows([0, 1]), Q_T=rows([0, 1]), tau=1.0)
    assert loss.item() == pytest.approx((E - 1) / (E + 1), rel=1e-5)


def test_kl_alignment_includes_the_pairs_own_similarity():
    # A single queued pair: the queue-only form compared two one-entry distributions and was always 0; the
    # paper's puts the pair first, so two tasks that disagree on it are penalised.
    v, t = rows([1, 0]), rows([0, 1])
    v_m, t_m = rows([0, 1]), rows([1, 0])  # v.t_m = 1, t.v_m = 1: both tasks sure of the pair
    queue_i, queue_t = rows([0, 1]), rows([1, 0])  # v.Q_T = 1 but t.Q_I = 1 too: both equally unsure
    assert kl_alignment_loss(v, t, v_m, t_m, queue_i, queue_t, 0.5).item() == pytest.approx(0.0, abs=1e-6)
    # image->text now puts its mass on the queue (v.t_m = 0, v.Q_T = 1), text->image still splits it evenly
    a = [1 / (1 + E ** 2), E ** 2 / (1 + E ** 2)]
    expected = sum((x - 0.5) * (math.log(x) - math.log(0.5)) for x in a) / 2
    assert kl_alignment_loss(v, t, v_m, rows([0, 1]), queue_i, queue_t, 0.5).item() == pytest.approx(expected, rel=1e-5)


def test_kl_alignment_zero_for_identical_distributions_and_empty_queue():
    v = rows([1, 0])
    queue = rows([1, 0], [0, 1])
    assert kl_alignment_loss(v, v, v, v, queue, queue, 0.1).item() == pytest.approx(0.0, abs=1e-6)
    empty = torch.zeros(0, 2)
    assert kl_alignment_loss(v, v, v, v, empty, empty, 0.1).item() == 0.0


def test_losses_are_fp32_under_autocast():
    # bf16 similarities at tau 0.01 move the logits by up to 0.25: the losses must not see them
    g = torch.Generator().manual_seed(0)
    v, t, v_m, t_m = (random_unit_rows(g, 8, 64) for _ in range(4))
    q_i, q_t = random_unit_rows(g, 256, 64), random_unit_rows(g, 256, 64)
    plain = (kl_alignment_loss(v, t, v_m, t_m, q_i, q_t, 0.01), mcl_loss(v, t, v_m, t_m, q_i, q_t, 0.01))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = (kl_alignment_loss(v, t, v_m, t_m, q_i, q_t, 0.01), mcl_loss(v, t, v_m, t_m, q_i, q_t, 0.01))
    for a, b in zip(plain, autocast):
        assert b.dtype == torch.float32
        assert b.item() == pytest.approx(a.item(), rel=1e-6)


def test_amf_threshold_and_mask():
    queue = torch.tensor([0.5, 0.7, 0.9])  # mean 0.7, unbiased std 0.2 -> threshold 0.7 - 2 * 0.2 = 0.3
    assert amf_threshold(queue, k=2.0).item() == pytest.approx(0.3, abs=1e-6)
    keep = amf_keep_mask(torch.tensor([0.2, 0.31, 0.8]), queue, k=2.0)
    assert keep.tolist() == [False, True, True]


def test_amf_keeps_all_while_queue_too_short():
    assert amf_keep_mask(torch.tensor([-5.0, 0.1]), torch.tensor([0.9]), k=2.0).tolist() == [True, True]
    assert amf_keep_mask(torch.tensor([-5.0]), torch.tensor([0.9, 0.8, 0.7]), k=2.0, min_queue=4).tolist() == [True]


def test_amf_can_filter_every_pair():
    keep = amf_keep_mask(torch.tensor([0.0, 0.1]), torch.tensor([0.9, 0.91, 0.92, 0.93]), k=2.0)
    assert not keep.any()


def test_cmlm_hand_worked_with_identity_head():
    # fused token 0 = [1, 0, 0] + [0, 1, 0] = [1, 1, 0]; CE(label 0) = log(2e + 1) - 1; token 1 unmasked
    tokens = torch.tensor([[[1.0, 0, 0], [5.0, 5, 5]]])
    image_global = torch.tensor([[0.0, 1, 0]])
    labels = torch.tensor([[0, -100]])
    loss = cmlm_loss(tokens, image_global, labels, predict=lambda x: x)
    assert loss.item() == pytest.approx(math.log(2 * E + 1) - 1, rel=1e-5)


def test_cmvm_uses_text_global_and_averages_masked_patches():
    tokens = torch.zeros(1, 2, 2)
    text_global = torch.tensor([[2.0, 0.0]])
    labels = torch.tensor([[0, 1]])  # both patches masked: fused logits [2, 0] for each
    loss = cmvm_loss(tokens, text_global, labels, predict=lambda x: x)
    expected = (-math.log(E ** 2 / (E ** 2 + 1)) - math.log(1 / (E ** 2 + 1))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_masked_losses_without_masked_positions_are_zero():
    tokens = torch.randn(2, 3, 4, requires_grad=True)
    labels = torch.full((2, 3), -100)
    assert cmlm_loss(tokens, torch.zeros(2, 4), labels, lambda x: x).item() == 0.0
    assert cmvm_loss(tokens[:0], torch.zeros(0, 4), labels[:0], lambda x: x).item() == 0.0
