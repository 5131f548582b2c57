"""Tiny random CLIP and SigLIP checkpoints in Hugging Face's own folder layout, built offline.

What ``save_pretrained`` of ``CLIPModel``/``SiglipModel`` and their processors leaves (config.json,
model.safetensors, tokenizer and preprocessor files), at a size that builds in a second: the shapes and
code paths of the real families, random weights. The tokenizers are trained here on a small corpus (a
byte-level BPE for CLIP with ``tokenizers``, a SentencePiece unigram model for SigLIP).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = ("a photo of the cat dog red blue green car tree house beach sunset person people flowers mountain "
         "snow river city night bird boat an astronaut on moon coffee cup street food giraffe kids").split()
CORPUS = [" ".join(WORDS[i:i + 6]) for i in range(len(WORDS))] * 20


def _clip_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    bpe = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|startoftext|>", "<|endoftext|>"],
                                  end_of_word_suffix="</w>", initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(CORPUS, trainer)
    data = json.loads(bpe.to_str())
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in data["model"]["merges"]]
    return CLIPTokenizer(vocab=data["model"]["vocab"], merges=merges, model_max_length=77)


def make_tiny_clip(folder: str | Path, seed: int = 0, image_size: int = 32, patch_size: int = 8,
                   projection_dim: int = 24, text: dict | None = None, vision: dict | None = None,
                   processor: bool = False) -> Path:
    """A CLIPModel folder (ViT vision tower, causal text tower, bias-free projections). ``text`` and
    ``vision`` override the towers' config fields (bench/clip_family_speed.py builds real sizes so).
    ``processor``: saved as transformers 5 saves a CLIPProcessor (processor_config.json, the image processor
    nested, no preprocessor_config.json) instead of the image processor's own file."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = _clip_tokenizer()
    config = CLIPConfig(
        text_config={**dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=2, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id),
                     **(text or {})},
        vision_config={**dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
                              image_size=image_size, patch_size=patch_size), **(vision or {})},
        projection_dim=projection_dim)
    model = CLIPModel(config).eval()
    model.save_pretrained(folder)
    images = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size,
                                                                               "width": image_size})
    if processor:
        CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    else:
        tokenizer.save_pretrained(folder)
        images.save_pretrained(folder)
    return folder


def _siglip_tokenizer(folder: Path):
    import sentencepiece as spm
    from transformers import SiglipTokenizer

    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    prefix = folder / "spiece"
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(prefix), vocab_size=60,
                                   model_type="unigram", pad_id=1, eos_id=2, unk_id=3, bos_id=-1,
                                   pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
                                   minloglevel=2)
    corpus.unlink()
    (folder / "spiece.vocab").unlink()
    tokenizer = SiglipTokenizer(vocab_file=str(prefix) + ".model", model_max_length=16)
    return tokenizer


def make_tiny_siglip(folder: str | Path, seed: int = 0, image_size: int = 32, patch_size: int = 8,
                     width: int = 32, text: dict | None = None, vision: dict | None = None,
                     processor: bool = False) -> Path:
    """A SiglipModel folder (bidirectional text tower pooled at its last position, attention-pooled
    vision tower, no projections), tokenizer padded to max length as the family is trained. ``processor``: the
    processor saved as transformers 5 saves it (processor_config.json, no preprocessor_config.json)."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = _siglip_tokenizer(folder)
    config = SiglipConfig(
        text_config={**dict(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=64,
                            num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=16,
                            projection_size=width, pad_token_id=tokenizer.pad_token_id,
                            eos_token_id=tokenizer.eos_token_id, bos_token_id=None), **(text or {})},
        vision_config={**dict(hidden_size=width, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=image_size, patch_size=patch_size), **(vision or {})})
    model = SiglipModel(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "spiece.model").unlink(missing_ok=True)  # save_pretrained copied it beside the original
    tokenizer.save_pretrained(folder)
    images = SiglipImageProcessor(size={"height": image_size, "width": image_size})
    if processor:
        SiglipProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    else:
        images.save_pretrained(folder)
    return folder
