"""``cots models``: the models this machine can use (built in, downloaded, trained here), their size,
embedding width and measured CPU speed; ``cots models download ORG/NAME`` fetches a CLIP or SigLIP model
from the Hugging Face hub."""
from __future__ import annotations

import argparse
import json
import sys

from app.cli.common import add_json_option, announce_download
from app.library.pathtext import display_text
from app.library.transfer_bar import transfer_bar_class


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="the models you can use: built in, downloaded, trained here",
                              description="List the models this machine can use with --model: the built-in one, "
                                          "those downloaded from the Hugging Face hub and those trained here, "
                                          "with their size, embedding width and CPU speed (once measured).")
    add_json_option(p)
    p.add_argument("--measure", action="store_true",
                   help="measure each model's CPU speed (images/s, ms per text query; a few seconds each) and "
                        "remember it")
    p.set_defaults(handler=cmd_models)
    actions = p.add_subparsers(dest="models_action", metavar="ACTION")
    d = actions.add_parser("download", help="download a CLIP or SigLIP model from the Hugging Face hub",
                           description="Fetch ORG/NAME (safetensors weights, configs and tokenizer only) into "
                                       "the user data folder; afterwards --model ORG/NAME uses it offline.")
    d.add_argument("repo_id", metavar="ORG/NAME")
    d.add_argument("--revision", help="branch, tag or commit (default: main)")
    d.set_defaults(handler=cmd_models_download)


def cmd_models_download(args) -> int:
    from cots_core import hub
    from cots_core.errors import ModelLoadError

    if not hub.looks_like_hub_id(args.repo_id):
        raise ModelLoadError(f"{args.repo_id!r} is not a hub id: give ORG/NAME, e.g. openai/clip-vit-base-patch32")
    found = hub.downloaded_path(args.repo_id)
    if found is not None and args.revision is None:
        print(f"{args.repo_id} is already downloaded: {display_text(found)}")
        return 0
    if hub.is_offline():
        raise ModelLoadError(hub.offline_message(args.repo_id))
    announce_download(args.repo_id, hub.hub_models_dir() / hub.folder_name(args.repo_id))
    folder = hub.download(args.repo_id, revision=args.revision, tqdm_class=transfer_bar_class())
    print(f"{args.repo_id} is ready in {display_text(folder)}: use it with --model {args.repo_id}")
    return 0


def cmd_models(args) -> int:
    from app.library import model_catalog

    entries = model_catalog.list_models()
    failures = {}
    if args.measure:
        failures = _measure(entries)
        entries = model_catalog.list_models()
    if args.json:
        print(json.dumps([{**e.to_dict(), **({"measure_error": failures[e.source]} if e.source in failures else {})}
                          for e in entries], indent=1))
        return 0
    print(f"  {'MODEL':44s} {'KIND':13s} {'SIZE':>9s} {'WIDTH':>6s}  CPU SPEED")
    for entry in entries:
        print(f"  {display_text(entry.source):44s} {entry.kind:13s} {_size(entry.size_bytes):>9s} "
              f"{_width(entry):>6s}  {_speed(entry, failures.get(entry.source))}")
    print("use one with --model MODEL; `cots models download ORG/NAME` fetches a CLIP or SigLIP model"
          + ("" if args.measure else "; `cots models --measure` times them on this CPU"))
    return 0


def _measure(entries) -> dict:
    """Measure each readable model; one that fails to load is reported, and the others still run."""
    from app.library import model_catalog
    from cots_core.errors import CotsError

    failures = {}
    for entry in entries:
        if entry.unreadable:
            continue
        print(f"measuring {display_text(entry.source)} on the CPU ...", file=sys.stderr, flush=True)
        try:
            images_per_s, text_ms, model_id = model_catalog.measure_speed(entry.source)
        except (CotsError, OSError, ValueError, RuntimeError) as error:
            failures[entry.source] = display_text(str(error).splitlines()[0] if str(error) else type(error).__name__)
            continue
        model_catalog.record_speed(entry, images_per_s, text_ms, model_id)
    return failures


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return "-"


def _width(entry) -> str:
    if entry.unreadable:
        return "?"
    return str(entry.embed_dim) if entry.embed_dim else "-"


def _speed(entry, failure: str | None) -> str:
    if entry.unreadable:
        return f"unreadable: {display_text(entry.unreadable)}"
    if failure:
        return f"could not be measured: {failure}"
    if entry.images_per_s is None:
        return "not measured"
    return f"{entry.images_per_s:.0f} images/s, {entry.text_ms:.0f} ms per query"
