import torch

from cots_core.masking import block_mask, mask_words


def test_block_mask_ratio_and_blocks():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        mask = block_mask((24, 24), ratio=0.4, min_block=16, generator=generator)
        assert mask.shape == (24, 24)
        assert int(mask.sum()) == round(0.4 * 576)


def test_block_mask_small_grid_masks_at_least_one():
    mask = block_mask((2, 2), ratio=0.1, min_block=16)
    assert int(mask.sum()) == 1


def test_bert_masking_rule(seed_offset, record_measure):
    generator = torch.Generator().manual_seed(seed_offset)
    ids = torch.randint(10, 1000, (200, 50))
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS], [SEP]
    attention = torch.ones_like(ids)
    masked, labels = mask_words(ids, attention, special_ids=[0, 1, 2, 3, 4], mask_id=4, vocab_size=1000,
                                probability=0.15, generator=generator)
    chosen = labels != -100
    assert not chosen[:, 0].any() and not chosen[:, -1].any()  # specials never chosen
    chosen_error = abs(chosen.float().mean().item() - 0.15 * 48 / 50)
    record_measure("|chosen rate - 0.144|", chosen_error, 0.02, "max")
    assert chosen_error < 0.02
    assert torch.equal(labels[chosen], ids[chosen])
    became_mask = (masked == 4) & chosen
    unchanged = (masked == ids) & chosen
    mask_error = abs(became_mask.sum().item() / chosen.sum().item() - 0.8)
    unchanged_error = abs(unchanged.sum().item() / chosen.sum().item() - 0.1)  # (+ random draws of the same id)
    record_measure("|[MASK] share - 0.8|", mask_error, 0.05, "max")
    record_measure("|unchanged share - 0.1|", unchanged_error, 0.05, "max")
    assert mask_error < 0.05 and unchanged_error < 0.05
    assert torch.equal(masked[~chosen], ids[~chosen])


def test_every_text_gets_a_masked_word_and_padding_is_never_chosen():
    ids = torch.tensor([[2, 50, 3, 0, 0], [2, 60, 61, 3, 0]])
    attention = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    _, labels = mask_words(ids, attention, [0, 1, 2, 3, 4], 4, 100, probability=0.0)
    assert ((labels != -100).sum(dim=1) == 1).all()
    assert (labels[attention == 0] == -100).all()
