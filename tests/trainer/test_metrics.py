import numpy as np
import pytest

from trainer.metrics import item_to_text_ranks, retrieval_metrics, text_to_item_ranks


def test_perfect_diagonal_one_caption_each():
    m = retrieval_metrics(np.eye(4), [0, 1, 2, 3])
    assert m["i2t_r1"] == m["t2i_r1"] == 100.0
    assert m["rsum"] == 600.0
    assert m["median_rank"] == 1.0 and m["mean_rank"] == 1.0


def test_hand_worked_two_captions_per_image():
    # 3 images, 6 captions; caption j belongs to image j // 2
    sim = np.array([
        # c0   c1   c2   c3   c4   c5
        [0.9, 0.1, 0.95, 0.2, 0.0, 0.0],   # image 0: best own caption c0 is beaten by c2 -> rank 1
        [0.0, 0.0, 0.5, 0.8, 0.1, 0.0],    # image 1: own c3 best -> rank 0
        [0.3, 0.0, 0.0, 0.0, 0.2, 0.25],   # image 2: own best c5=0.25, c0=0.3 above -> rank 1
    ])
    owners = [0, 0, 1, 1, 2, 2]
    assert item_to_text_ranks(sim, owners).tolist() == [1, 0, 1]
    # text->image: column-wise rank of the owner
    # c0: [0.9,0,0.3] -> 0; c1: [0.1,0,0] -> 0; c2: [0.95,0.5,0] owner 1 -> 1; c3: [.2,.8,0] -> 0;
    # c4: [0,.1,.2] -> 0; c5: [0,0,.25] -> 0
    assert text_to_item_ranks(sim, owners).tolist() == [0, 0, 1, 0, 0, 0]
    m = retrieval_metrics(sim, owners)
    assert m["i2t_r1"] == pytest.approx(100 / 3)
    assert m["i2t_r5"] == 100.0
    assert m["t2i_r1"] == pytest.approx(500 / 6)
    assert m["median_rank"] == 1.0
    assert m["mean_rank"] == pytest.approx((1 * 5 + 2) / 6)
    assert m["rsum"] == pytest.approx(100 / 3 + 100 + 100 + 500 / 6 + 100 + 100)


def test_ties_are_pessimistic():
    # a constant matrix must not look perfect: every wrong candidate ties and ranks ahead
    sim = np.zeros((4, 4))
    assert text_to_item_ranks(sim, [0, 1, 2, 3]).tolist() == [3, 3, 3, 3]
    assert item_to_text_ranks(sim, [0, 1, 2, 3]).tolist() == [3, 3, 3, 3]
    m = retrieval_metrics(sim, [0, 1, 2, 3])
    assert m["i2t_r1"] == m["t2i_r1"] == 0.0
    assert m["median_rank"] == 4.0 and m["mean_rank"] == 4.0


def test_tie_with_own_other_caption_does_not_hurt():
    # image 0 owns c0 and c1 which tie each other; c2 (image 1) is lower
    sim = np.array([[0.5, 0.5, 0.1], [0.0, 0.0, 0.9]])
    assert item_to_text_ranks(sim, [0, 0, 1]).tolist() == [0, 0]
    # one wrong caption ties with the best own caption: pushed down by one
    sim2 = np.array([[0.5, 0.2, 0.5], [0.0, 0.0, 0.9]])
    assert item_to_text_ranks(sim2, [0, 0, 1]).tolist() == [1, 0]


def test_partial_tie_text_to_image_and_nan():
    sim = np.array([[0.7, 0.2], [0.7, np.nan], [0.1, 0.3]])
    # caption 0 belongs to image 1 (0.7), image 0 ties at 0.7 -> rank 1
    # caption 1 belongs to image 1 (NaN counts as -inf) -> both others above -> rank 2
    assert text_to_item_ranks(sim, [1, 1]).tolist() == [1, 2]


def test_recall_at_5_and_10_and_median_rank():
    n = 20
    sim = -np.abs(np.subtract.outer(np.arange(n), (np.arange(n) + 7) % n)).astype(float)
    sim += np.eye(n) * -100  # push each own pair to the bottom
    ranks = text_to_item_ranks(sim, list(range(n)))
    assert (ranks == n - 1).all()
    m = retrieval_metrics(sim, list(range(n)))
    assert m["t2i_r10"] == 0.0 and m["median_rank"] == n


def test_shape_errors():
    with pytest.raises(ValueError):
        retrieval_metrics(np.zeros((2, 3)), [0, 1])
    with pytest.raises(ValueError):
        item_to_text_ranks(np.zeros((2, 2)), [0, 0])


def test_identical_captions_of_different_items_answer_for_each_other():
    # two photos captioned "a cow": the query of photo 0 ranks photo 1 first, which is a right answer
    sim = np.array([[0.5, 0.2, 0.0], [0.9, 0.8, 0.1], [0.0, 0.1, 0.9]])
    owner, texts = [0, 1, 2], ["A cow.", "a cow.", "A pig."]
    assert retrieval_metrics(sim, owner)["t2i_r1"] == pytest.approx(200 / 3)
    with_texts = retrieval_metrics(sim, owner, texts)
    assert with_texts["t2i_r1"] == 100.0 and with_texts["i2t_r1"] == 100.0
