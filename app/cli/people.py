"""`cots people`: the people found in a library's photos, to list, name, merge, split, hide and forget.

Every action goes through ``app.library.people.People``; errors are one line (``PeopleError``).
"""
from __future__ import annotations

import argparse
import json

from app.cli.common import positive_int, shared_options, typed_text
from app.library.pathtext import display_text
from app.library.timefmt import format_time

EPILOG = """examples:
  cots people                      list people (named first, then by photo count)
  cots people show 3               a person's photos and face ids
  cots people name 3 "Anna"        name person 3; `cots search Anna` (capitalised as named) finds her photos
  cots people merge 5 3            person 5 is person 3 too
  cots people move 42 --to new     face 42 is someone else (or --to 7)
  cots people hide 9               leave person 9 out of the list (`--undo` shows them again)
  cots people forget 9             delete person 9's face vectors (the photos stay)
  cots people regroup              merge unnamed people who look alike, move faces to the nearest person
  cots people suggestions          "Is this Anna?", "Same person?": answer with --accept N or --reject N"""


def register(subparsers: argparse._SubParsersAction) -> None:
    common = shared_options("db", "json")
    p = subparsers.add_parser("people", parents=[common], help="the people in your photos: list, name, merge",
                              description="People found in your photos (faces grouped by who they are). Names "
                                          "stay in the library and are search words: `cots search Anna`.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--all", action="store_true", help="also hidden people and people seen in one photo only")
    p.set_defaults(handler=cmd_list)
    actions = p.add_subparsers(dest="people_command", metavar="ACTION")

    a = actions.add_parser("show", parents=[common], help="a person's photos and faces")
    a.add_argument("id", type=person_id)
    a.set_defaults(handler=cmd_show)
    a = actions.add_parser("name", parents=[common], help="name a person")
    a.add_argument("id", type=person_id)
    a.add_argument("name", type=typed_text, help=f"the name (at most {_max_name()} characters)")
    a.set_defaults(handler=cmd_name)
    a = actions.add_parser("merge", parents=[common], help="merge the first person into the second")
    a.add_argument("id", type=person_id)
    a.add_argument("into", type=person_id)
    a.set_defaults(handler=cmd_merge)
    a = actions.add_parser("move", parents=[common], help="move one face to another person or a new one")
    a.add_argument("face", type=person_id, metavar="FACE_ID")
    a.add_argument("--to", required=True, type=move_target, metavar="ID|new")
    a.set_defaults(handler=cmd_move)
    a = actions.add_parser("hide", parents=[common], help="leave a person out of the list")
    a.add_argument("id", type=person_id)
    a.add_argument("--undo", action="store_true", help="show them again")
    a.set_defaults(handler=cmd_hide)
    a = actions.add_parser("regroup", parents=[common],
                           help="refine the grouping: unnamed people whose faces lie as close as the grouping "
                                "joins merge, and faces placed automatically move to the nearest person "
                                "(named and hidden people, merges and faces you moved stay)")
    a.set_defaults(handler=cmd_regroup)
    a = actions.add_parser("suggestions", parents=[common],
                           help='questions to answer: "Is this Grace?" for a face near a named person, '
                                '"Same person?" for two unnamed people (nothing changes until you answer)')
    a.add_argument("--limit", type=positive_int, default=20, help="at most this many (default 20)")
    answer = a.add_mutually_exclusive_group()
    answer.add_argument("--accept", type=positive_int, metavar="N", help="answer suggestion N (as listed) yes")
    answer.add_argument("--reject", type=positive_int, metavar="N", help="answer suggestion N no: never asked again")
    a.set_defaults(handler=cmd_suggestions)
    a = actions.add_parser("forget", parents=[common], help="delete a person's face vectors (the photos stay)")
    a.add_argument("id", type=person_id)
    a.set_defaults(handler=cmd_forget)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _max_name() -> int:
    from app.library.people import MAX_NAME_LENGTH

    return MAX_NAME_LENGTH


def person_id(text: str) -> int:
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:  # too large, below 1 or not a number: not an id this library gave
        raise argparse.ArgumentTypeError(f"{text!r} is not an id (a whole number `cots people` shows)") from None


def move_target(text: str) -> int | str:
    return "new" if text.strip().lower() == "new" else person_id(text)


def _people(args):
    from app.library import Library
    from app.library.people import People

    library = Library(args.db, create=False)
    return library, People(library)


def _print_person(person, args) -> None:
    if args.json:
        print(json.dumps(person.to_dict(), ensure_ascii=False))
    else:
        print(f"person {person.id}: {display_text(person.label())} ({person.photos} photo"
              f"{'s' if person.photos != 1 else ''}{', hidden' if person.hidden else ''})")


def cmd_list(args) -> int:
    library, people = _people(args)
    with library:
        found = people.list(include_hidden=args.all, min_photos=1 if args.all else 2)
        if args.json:
            print(json.dumps([{**p.to_dict(), "photo_paths": people.photos(p.id)} for p in found],
                             indent=1, ensure_ascii=False))
            return 0
        if not found:
            print("no people yet: `cots index` finds faces in the photos (people seen in one photo only "
                  "and hidden people: `cots people --all`)")
        for person in found:
            face = people.face(person.face_id) if person.face_id is not None else None
            shown = f"  face {face.id} in {display_text(face.path)}" if face else ""
            print(f"  {person.id:5d}  {display_text(person.label())[:40]:40s} {person.photos:5d} photo"
                  f"{'s' if person.photos != 1 else ' '}{'  (hidden)' if person.hidden else ''}{shown}")
    return 0


def cmd_show(args) -> int:
    library, people = _people(args)
    with library:
        person = people.get(args.id)
        faces = people.faces(args.id)
        if args.json:
            print(json.dumps({**person.to_dict(), "photo_paths": people.photos(args.id),
                              "faces": [{"id": f.id, "path": f.path, "box": f.box, "source": f.source, "at_s": f.at_s}
                                        for f in faces]},
                             indent=1, ensure_ascii=False))
            return 0
        _print_person(person, args)
        for face in faces:
            moment = f"  at {format_time(face.at_s)}" if face.at_s is not None else ""
            print(f"  face {face.id:6d}  {display_text(face.path)}{moment}"
                  + ("  (placed by you)" if face.source == "user" else ""))
    return 0


def _change(args, change) -> int:
    """Run one of a person's decisions (``change(people)`` returns the person as it is now) and show them."""
    library, people = _people(args)
    with library:
        _print_person(change(people), args)
    return 0


def cmd_name(args) -> int:
    return _change(args, lambda people: people.name(args.id, args.name))


def cmd_merge(args) -> int:
    return _change(args, lambda people: people.merge(args.id, args.into))


def cmd_move(args) -> int:
    return _change(args, lambda people: people.move(args.face, args.to))


def cmd_hide(args) -> int:
    return _change(args, lambda people: people.hide(args.id, not args.undo))


def cmd_forget(args) -> int:
    library, people = _people(args)
    with library:
        deleted = people.forget(args.id)
        if args.json:
            print(json.dumps({"id": args.id, "faces_deleted": deleted}))
        else:
            print(f"forgot person {args.id}: {deleted} face{'s' if deleted != 1 else ''} deleted (the photos stay)")
    return 0


def cmd_regroup(args) -> int:
    library, people = _people(args)
    with library:
        done = people.regroup()
        print(json.dumps(done.to_dict()) if args.json else
              f"{_count(done.people_merged, 'unnamed person', 'unnamed people')} merged into a nearer one "
              f"({_count(done.faces_merged, 'face')}), {_count(done.faces_moved, 'face')} moved to a nearer person")
    return 0


def cmd_suggestions(args) -> int:
    from app.library.people import PeopleError

    library, people = _people(args)
    with library:
        found = people.suggestions(args.limit)
        number = args.accept or args.reject
        if number is None:
            return _print_suggestions(people, found, args)
        if number > len(found):
            raise PeopleError(f"there is no suggestion {number}: `cots people suggestions` lists {len(found)}")
        chosen = found[number - 1]
        if args.accept:
            _print_person(people.accept(chosen), args)
        else:
            people.reject(chosen)
            print(json.dumps({"rejected": chosen.to_dict()}) if args.json else
                  f"{chosen.question()} No: not asked again")
    return 0


def _print_suggestions(people, found, args) -> int:
    if args.json:
        print(json.dumps([s.to_dict() for s in found], ensure_ascii=False, indent=1))
        return 0
    if not found:
        print("no suggestions: no face lies near a named person, and no two unnamed people near each other")
    for number, s in enumerate(found, 1):
        if s.kind == "face":
            face = people.face(s.subject)
            what = f"face {s.subject} in {display_text(face.path)}, {s.distance:.2f} from person {s.person_id}"
        else:
            what = f"person {s.subject} and person {s.person_id}, {s.distance:.2f} apart"
        print(f"  {number:3d}  {display_text(s.question()):28s} {what}")
    if found:
        print("answer with `cots people suggestions --accept N` (yes) or `--reject N` (no)")
    return 0
