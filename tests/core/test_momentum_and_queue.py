import torch
from torch import nn

from cots_core.momentum import FeatureQueue, make_momentum_copy, momentum_update


def test_momentum_update_is_the_ema_formula():
    online = nn.Linear(3, 2)
    twin = make_momentum_copy(online)
    with torch.no_grad():
        twin.weight.fill_(1.0)
        twin.bias.fill_(-1.0)
        online.weight.fill_(3.0)
        online.bias.fill_(1.0)
    momentum_update(online, twin, m=0.9)
    # theta_m <- 0.9 * theta_m + 0.1 * theta
    assert torch.allclose(twin.weight, torch.full((2, 3), 0.9 * 1 + 0.1 * 3))
    assert torch.allclose(twin.bias, torch.full((2,), 0.9 * -1 + 0.1 * 1))
    assert not any(p.requires_grad for p in twin.parameters())


def _batch(start, count, dim=2):
    values = torch.arange(start, start + count, dtype=torch.float32)
    return values[:, None].expand(count, dim) * 1.0, values[:, None].expand(count, dim) * -1.0, values * 10


def test_queue_wraps_around_and_stays_paired():
    queue = FeatureQueue(size=5, dim=2)
    assert queue.valid()[0].shape == (0, 2)
    queue.enqueue(*_batch(0, 3))
    image, text, sim = queue.valid()
    assert image.shape[0] == 3 and int(queue.pointer) == 3
    queue.enqueue(*_batch(3, 4))  # 7 items in a queue of 5: items 5 and 6 overwrite 0 and 1
    image, text, sim = queue.valid()
    assert int(queue.filled) == 5 and int(queue.pointer) == 2
    assert image[:, 0].tolist() == [5, 6, 2, 3, 4]
    # the three queues stay paired row by row
    assert torch.equal(text[:, 0], -image[:, 0])
    assert torch.equal(sim, image[:, 0] * 10)


def test_queue_batch_larger_than_queue_keeps_newest():
    queue = FeatureQueue(size=3, dim=2)
    queue.enqueue(*_batch(0, 5))
    image, text, sim = queue.valid()
    assert sorted(image[:, 0].tolist()) == [2, 3, 4]
    assert torch.equal(sim, image[:, 0] * 10)


def test_queue_state_lives_in_buffers():
    queue = FeatureQueue(size=4, dim=2)
    queue.enqueue(*_batch(0, 3))
    restored = FeatureQueue(size=4, dim=2)
    restored.load_state_dict(queue.state_dict())
    assert int(restored.filled) == 3 and int(restored.pointer) == 3
    assert torch.equal(restored.valid()[0], queue.valid()[0])


def test_queued_pairs_of_the_same_caption_or_the_same_item_are_positives():
    queue = FeatureQueue(size=8, dim=2)
    # queued: (caption 10, item 1), (caption 11, item 1), (caption 12, item 2), then one with no keys at all
    queue.enqueue(*_batch(0, 3), keys=torch.tensor([10, 11, 12]), item_keys=torch.tensor([1, 1, 2]))
    queue.enqueue(*_batch(3, 1))
    assert queue.valid_item_keys().tolist() == [1, 1, 2, -1]
    captions, items = torch.tensor([10, 13, 14]), torch.tensor([3, 1, 4])
    # pair 0: same caption as row 0; pair 1: another caption of item 1 (rows 0 and 1); pair 2: none
    assert queue.positives(captions, items).tolist() == [[True, False, False, False],
                                                        [True, True, False, False],
                                                        [False, False, False, False]]
    # without item keys (bench scripts, plain caption batches) only the caption rule applies
    assert queue.positives(captions).tolist() == [[True, False, False, False], [False] * 4, [False] * 4]
    assert queue.positives(None, items)[1].tolist() == [True, True, False, False]
    assert queue.positives(None) is None


def test_the_queue_keeps_its_rows_keys_when_the_batch_is_larger_than_the_queue():
    queue = FeatureQueue(size=3, dim=2)
    queue.enqueue(*_batch(0, 5), keys=torch.arange(5), item_keys=torch.arange(5) + 100)
    order = queue.valid()[0][:, 0].long()
    assert torch.equal(queue.valid_keys(), order) and torch.equal(queue.valid_item_keys(), order + 100)
