"""COTS training objectives as pure functions of tensors.

Notation: v, t are online image/text embeddings [B, D]; v_m, t_m the momentum embeddings [B, D];
Q_I, Q_T the paired image/text queues [N, D] (N may be 0); all rows L2-normalised; tau the temperature.
Every function returns a scalar that is a defined zero (never NaN) when it has nothing to average, and
computes in fp32 under autocast (the towers may run in bf16/fp16; the losses never do).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def _zero_like(*tensors: torch.Tensor) -> torch.Tensor:
    """A zero that stays connected to the graph, so backward() works when a loss has no terms."""
    return sum((x.sum() * 0.0 for x in tensors), torch.zeros((), device=tensors[0].device))


def _full_precision(reference: torch.Tensor):
    """Autocast off on ``reference``'s device: at tau = 0.01 a bf16 similarity is off by up to 0.25 in the
    logits, so the losses' matmuls and softmaxes run in fp32 whatever the towers ran in."""
    return torch.autocast(reference.device.type, enabled=False)


def _contrastive_direction(q: torch.Tensor, k_pos: torch.Tensor, k_neg: torch.Tensor, tau: float | torch.Tensor,
                           extra_positive: torch.Tensor | None = None) -> torch.Tensor:
    """-mean_i 1/|P_i| sum_(p in P_i) log( exp(q_i.k_p/tau) / (exp(q_i.k_pos_i/tau) + sum_k exp(q_i.k_neg_k/tau)) ),
    P_i = {the paired key} + {queue rows k with extra_positive[i, k]}."""
    with _full_precision(q):
        q, k_pos, k_neg = q.float(), k_pos.float(), k_neg.float()
        positive = (q * k_pos).sum(dim=1, keepdim=True)  # [B, 1]
        negatives = q @ k_neg.t()  # [B, N]
        log_prob = F.log_softmax(torch.cat([positive, negatives], dim=1) / tau, dim=1)
    if extra_positive is None or not bool(extra_positive.any()):
        return -log_prob[:, 0].mean()
    mask = torch.cat([torch.ones_like(extra_positive[:, :1]), extra_positive], dim=1).to(log_prob.dtype)
    return -((log_prob * mask).sum(dim=1) / mask.sum(dim=1)).mean()


def mcl_loss(v: torch.Tensor, t: torch.Tensor, v_m: torch.Tensor, t_m: torch.Tensor,
             Q_I: torch.Tensor, Q_T: torch.Tensor, tau: float | torch.Tensor,  # noqa: N803
             queue_positive: torch.Tensor | None = None) -> torch.Tensor:
    """Instance-level momentum contrastive loss, L_mcl = L_i2t + L_t2i.

    L_i2t = -1/B sum_i log( exp(v_i.t_m_i/tau) / (exp(v_i.t_m_i/tau) + sum_k exp(v_i.Q_T[k]/tau)) )
    L_t2i = -1/B sum_i log( exp(t_i.v_m_i/tau) / (exp(t_i.v_m_i/tau) + sum_k exp(t_i.Q_I[k]/tau)) )
    The positive is the paired momentum embedding; the negatives are the other modality's queue.

    Multi-positive form (``queue_positive`` [B, N] bool, e.g. queued pairs with the same caption as pair i:
    personal collections repeat captions, and a small one cycles through the queue every epoch): with
    P_i = {i's pair} + {k : queue_positive[i, k]} and Z_i = exp(s_i,pos/tau) + sum_k exp(s_i,k/tau),
    L_i2t = -1/B sum_i 1/|P_i| sum_(p in P_i) log( exp(s_i,p/tau) / Z_i )   (SupCon's L_out; L_t2i alike),
    which equals the form above when no queued pair is a positive.
    """
    if v.shape[0] == 0:
        return _zero_like(v, t)
    return (_contrastive_direction(v, t_m, Q_T, tau, queue_positive)
            + _contrastive_direction(t, v_m, Q_I, tau, queue_positive))


def kl_alignment_loss(v: torch.Tensor, t: torch.Tensor, v_m: torch.Tensor, t_m: torch.Tensor,
                      Q_I: torch.Tensor, Q_T: torch.Tensor, tau: float | torch.Tensor) -> torch.Tensor:  # noqa: N803
    """Task-level interaction (COTS, sec. 3.2.3): symmetric KL between the two retrieval distributions.

    For pair i, with the same positive as MCL and the queues as the unpaired samples (index k of Q_I and
    Q_T is the same queued pair):
        D_I2T(i) = softmax( [v_i.t_m_i, v_i.Q_T[1], ..., v_i.Q_T[N]] / tau )
        D_T2I(i) = softmax( [t_i.v_m_i, t_i.Q_I[1], ..., t_i.Q_I[N]] / tau )
        L_kl = 1/(2B) sum_i [ KL(D_I2T(i) || D_T2I(i)) + KL(D_T2I(i) || D_I2T(i)) ]
    Entry 0 of both is the pair itself, so the two tasks are asked to agree on how sure they are of the right
    answer as well as on the ranking of the queue. Computed in fp32 (autocast off). With an empty queue both
    distributions are [1] and the loss is a defined zero.
    """
    if v.shape[0] == 0 or Q_I.shape[0] == 0:
        return _zero_like(v, t)
    with _full_precision(v):
        v, t, v_m, t_m, Q_I, Q_T = (x.float() for x in (v, t, v_m, t_m, Q_I, Q_T))  # noqa: N806
        i2t = torch.cat([(v * t_m).sum(dim=1, keepdim=True), v @ Q_T.t()], dim=1) / tau
        t2i = torch.cat([(t * v_m).sum(dim=1, keepdim=True), t @ Q_I.t()], dim=1) / tau
        log_p_i2t, log_p_t2i = F.log_softmax(i2t, dim=1), F.log_softmax(t2i, dim=1)
        kl_i2t_t2i = F.kl_div(log_p_t2i, log_p_i2t, reduction="none", log_target=True).sum(dim=1)
        kl_t2i_i2t = F.kl_div(log_p_i2t, log_p_t2i, reduction="none", log_target=True).sum(dim=1)
        return (kl_i2t_t2i + kl_t2i_i2t).mean() / 2


def amf_keep_mask(pair_sim: torch.Tensor, sim_queue: torch.Tensor, k: float = 2.0,
                  min_queue: int = 2) -> torch.Tensor:
    """Adaptive momentum filter: which pairs of the batch enter the losses.

    pair_sim[i] = v_m_i.t_m_i; mu, sigma = mean and (unbiased) standard deviation of the similarity
    queue; keep pair i iff pair_sim[i] >= s_AMF = mu - k*sigma.
    Rule while warming up: with fewer than `min_queue` (at least 2) similarities in the queue the
    distribution cannot be estimated, so every pair is kept.
    """
    if sim_queue.numel() < max(2, min_queue):
        return torch.ones_like(pair_sim, dtype=torch.bool)
    return pair_sim >= amf_threshold(sim_queue, k)


def amf_threshold(sim_queue: torch.Tensor, k: float = 2.0) -> torch.Tensor:
    """s_AMF = mean(sim_queue) - k * std(sim_queue); -inf for a queue too short to estimate."""
    if sim_queue.numel() < 2:
        return torch.tensor(float("-inf"), device=sim_queue.device)
    return sim_queue.mean() - k * sim_queue.std()


def _masked_prediction_loss(token_features: torch.Tensor, cross_global: torch.Tensor, labels: torch.Tensor,
                            predict: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    fused = token_features + cross_global.unsqueeze(1)  # [B, L, C]: the only exchange between the streams
    selected = labels >= 0
    if not bool(selected.any()):
        return _zero_like(token_features, cross_global)
    logits = predict(fused[selected])  # [M, V]: the head may run under autocast, the loss does not
    with _full_precision(logits):
        return F.cross_entropy(logits.float(), labels[selected])


def cmlm_loss(text_tokens: torch.Tensor, image_global: torch.Tensor, labels: torch.Tensor,
              predict: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Cross-modal masked language modelling.

    For each masked word position j of text i (labels[i, j] >= 0; -100 elsewhere):
    L_cmlm = -1/M sum_(i,j) log P( w_ij | h_ij + g(v_i) ), with h_ij the masked text pass's output token
    feature, g(v_i) the paired image's global feature mapped to the text width, P = softmax(predict(.)).
    """
    return _masked_prediction_loss(text_tokens, image_global, labels, predict)


def cmvm_loss(image_tokens: torch.Tensor, text_global: torch.Tensor, labels: torch.Tensor,
              predict: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Cross-modal masked vision modelling.

    For each masked patch j of image i (labels[i, j] = its dVAE token id; -100 for unmasked patches):
    L_cmvm = -1/M sum_(i,j) log P( z_ij | h_ij + g(t_i) ), with h_ij the masked image pass's output token
    feature and g(t_i) the paired text's global feature mapped to the image width.
    """
    return _masked_prediction_loss(image_tokens, text_global, labels, predict)
