"""How long an edition takes to check and build: python benchmarks/bench_build.py

Warm: in one process with a warm Renderer (as the preview server or the scheduler has), the
median time of load_items (the check) + assemble + render (MJML, premailer, the size, link and
alt checks) for editions of 5, 30 and 100 synthetic items. Unchanged inputs are answered by the
renderer's in-memory cache (keyed by the hash of everything the email depends on), so the same
30 items are also timed with that cache off: the templates, MJML and the checks run, premailer
only where the email changed (render_inline), which for unchanged inputs is nowhere. Then a
rebuild of 30 after one item's text changed: every other item from the parse cache, MJML on
that item's text only (render_splice), premailer on its table rows only; it is timed again
with each stage timed (the split printed under the table: read items, template hash,
assemble, cache key, Jinja2, MJML, premailer, checks, and the rest). Nothing is written
outside temporary folders (the parses the warm rows keep across processes go to a temporary
XDG_CACHE_HOME).
Cold: `newsflash --help`, `newsflash build --help` and `newsflash build 2022-02` of the
repository's sample (writing all five files), each in a fresh process, beside a bare
`python -c pass` (and `python -c "import click"`) and as a ratio to it; median and fastest of
--cold-runs (default 9), the commands taken in turn so a change of load touches them alike.
The build is timed four ways: the full build (its stamp removed: it loads and checks every
item, assembles, writes all five files and its stamp, the email read from state/render-cache;
issue 12's 300 ms target is this row's), the first build (state/ emptied before each run; the
config, the items' parses and the email from the user cache folder, email_cache.py), the first
build once more with the user cache folder emptied too (no config, item parse, compiled
template or email kept: a new machine; the render, and the import of Jinja2, mjml-python,
premailer, cssutils and lxml), and the replay of an up-to-date build (build_stamp, from
state/build-stamp/: no config, item parser, rich or renderer; a shortcut, so no target).
Beside them, the floor every command that reads config.toml stands on: a fresh process that
imports click and loads the sample's config.toml as the commands do (config_cache.load_cached),
from the config cache (config_loaded's plain classes: no pydantic) and with the cache emptied
(validated: email_validator, the schemas, then kept). The config cache is a temporary
XDG_CACHE_HOME, the user's is not touched. The processes run without PYTHONDONTWRITEBYTECODE,
so that the round not counted writes the .pyc files an installed package has; with it set,
every run would compile the modules it has none for.

Everything runs in temporary copies of the sample workspace; the repository is not touched.
Options: --runs N (warm runs per size, default 21), --profile (cProfile of the 30-item build),
--cold-runs N, --cold-only (skip the warm rows), --against DIR (another checkout with its own
.venv, such as main's: each cold case run by both codes in turn, its medians in the notes).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jinja2
import mjml

from newsflash import build_stamp, pipeline, read_cache, render, render_inline
from newsflash.config import load_config
from newsflash.pipeline import BuiltEdition, build_edition
from newsflash.render import Renderer

ROOT = Path(__file__).resolve().parent.parent
EDITION = "2022-02"
SIZES = (5, 30, 100)
WARM_TARGET_MS = {30: 20.0}  # issue 12's target; other sizes are for information
CHANGED_TARGET_MS = 8.0  # issue 12: a rebuild of 30 items after one of them changed
COLD_TARGET_MS = 300.0  # issue 12: a cold `newsflash build 2022-02`, a full build
HELP_TARGET_MS = 150.0
COLD_RUNS = 9

BODY = """\
The meeting of {section} on {day} February brought together partners from across the alliance
to discuss item {n}: how the transition of the mobility sector changes the skills that
companies, training providers and regions need, and what the alliance can do together.

On the agenda:

- **Case study {n}** on upskilling the workforce for *electromobility*, with lessons learnt
  from training programmes already under way in several member states.
- An overview of upcoming project opportunities under the Erasmus+ programme and the
  [Pact for Skills](https://pact-for-skills.ec.europa.eu/), presented by the secretariat.
- A discussion of the next steps for the working group, with a call for partners to share
  their own training offer and skills intelligence before the next meeting.

Partners who want to contribute are invited to contact the chair of the working group.
"""


def copy_sample(dst: Path) -> Path:
    for name in ("config.toml", "subscribers.csv"):
        shutil.copy(ROOT / name, dst / name)
    shutil.copytree(ROOT / "submissions", dst / "submissions")
    return dst


def synthetic_workspace(dst: Path, count: int) -> Path:
    """A copy of the sample whose submissions/ holds exactly `count` ready items."""
    copy_sample(dst)
    config = load_config(dst / "config.toml")
    shutil.rmtree(config.submissions_dir)
    folder = config.submissions_dir / EDITION
    folder.mkdir(parents=True)
    sections = config.section_keys
    for n in range(1, count + 1):
        section = sections[n % len(sections)]
        day = 1 + n % 28
        link = f"link: https://example.org/news/{n}\nlink_text: Read the report\n" if n % 2 else ""
        (folder / f"item-{n:03d}.md").write_text(
            f"---\ntitle: Synthetic news item number {n}\nsection: {section}\n"
            f"date: 2022-02-{day:02d}\norganisation: Working group {section}\n"
            f"summary: A short summary of item {n}.\n{link}order: {n}\nstatus: ready\n---\n"
            + BODY.format(section=section, day=day, n=n),
            encoding="utf-8",
        )
    return dst


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


class Uncached(Renderer):
    """A warm renderer that keeps no email: every build renders."""

    memo_size = 0


def warm(
    count: int, runs: int, profile: bool = False, kind: type[Renderer] = Renderer
) -> tuple[float, str]:
    """Median ms of check + build for `count` items, and the HTML size and size check."""
    with tempfile.TemporaryDirectory(prefix="newsflash-bench-") as tmp:
        config = load_config(synthetic_workspace(Path(tmp), count) / "config.toml")
        renderer = kind(config)

        def once() -> BuiltEdition:
            return build_edition(config, EDITION, renderer)

        build = once()  # warm-up: premailer/cssutils and Jinja2 compile on first use
        assert len(build.edition.items) == count, len(build.edition.items)
        once()
        ms = median_ms(once, runs)
        if profile:
            prof = cProfile.Profile()
            prof.runcall(lambda: [once() for _ in range(10)])
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
            print(f"\ncProfile, 10 warm builds of {count} items (cumulative):\n{out.getvalue()}")
        size = next(c.level for c in build.email.checks if c.name == "size")
        return ms, f"{build.email.size / 1024:.0f} KB html, size check {size}"


def newsflash_command(python: str = sys.executable) -> list[str]:
    script = Path(python).with_name("newsflash")
    return [str(script)] if script.exists() else [python, "-m", "newsflash.cli"]


Row = tuple[str, str, str, str, str]

# The cold cases, in the order each round runs them: (name, what the row says, target ms).
# "first" empties state/ before its clock starts ("first-new" the user cache folder too), so
# "again", right after them, finds the stamp they wrote; "cached" removes that stamp, and reads
# the email they rendered. "config-miss" empties the config cache, which it then fills: the
# two floors have a cache folder of their own, so the builds' stays as their last run left it.
FLOORS = ("config-hit", "config-miss")
COLD_CASES = (
    ("bare", "bare `python -c pass`", None),
    ("click", "`python -c 'import click'`", None),
    ("help", "cold `newsflash --help`", HELP_TARGET_MS),
    ("build-help", "cold `newsflash build --help`", HELP_TARGET_MS),
    ("config-hit", "floor: click + config.toml, cached", None),
    ("config-miss", "floor: click + config.toml, validated", None),
    ("first", f"cold `newsflash build {EDITION}`, first (no state/)", COLD_TARGET_MS),
    ("first-new", f"cold `newsflash build {EDITION}`, first, renders", COLD_TARGET_MS),
    ("again", f"cold `newsflash build {EDITION}` replayed (up to date)", None),
    ("cached", f"cold `newsflash build {EDITION}`, full build", COLD_TARGET_MS),
)
COLD_NOTES = {
    "bare": "any command's floor",
    "click": "the command line's floor",
    "help": "click and cli/__init__.py alone",
    "build-help": "click and cli/build.py",
    "config-hit": "from the config cache: config_loaded's classes, no pydantic",
    "config-miss": "no config cache: pydantic, email_validator, the schemas, validation",
    "first": "no state/; config, items and the email from the user cache",
    "first-new": "no state/, an empty user cache (a new machine): renders",
    "again": "a shortcut, not the target: prints what state/build-stamp recorded",
    "cached": "no stamp: loads, checks, assembles, writes; the email from state/render-cache",
}


def cold_commands(ws: Path, python: str = sys.executable) -> dict[str, list[str]]:
    """Each cold case's command line, in the sample workspace `ws`, by `python`'s newsflash."""
    config = ws / "config.toml"
    floor = (
        "import click\nfrom pathlib import Path\nfrom newsflash.config_cache import load_cached\n"
        f"load_cached(Path({str(config)!r}))"
    )
    newsflash = newsflash_command(python)
    build = [*newsflash, "--config", str(config), "build", EDITION]
    return {
        "bare": [python, "-c", "pass"],
        "click": [python, "-c", "import click"],
        "help": [*newsflash, "--help"],
        "build-help": [*newsflash, "build", "--help"],
        "config-hit": [python, "-c", floor],
        "config-miss": [python, "-c", floor],
        "first": build,
        "first-new": build,
        "again": build,
        "cached": build,
    }


def _before(name: str, ws: Path, cache: Path) -> None:
    """What a case removes before its clock starts (`cache`: the case's own)."""
    if name in ("config-miss", "first-new"):
        shutil.rmtree(cache, ignore_errors=True)
    if name in ("first", "first-new"):
        shutil.rmtree(ws / "state", ignore_errors=True)
    elif name == "cached":
        shutil.rmtree(ws / "state" / build_stamp.FOLDER, ignore_errors=True)


def _run(command: list[str], ws: Path, env: dict[str, str]) -> tuple[float, str]:
    """The ms of one fresh process, and what it printed (its workspace's path as WS)."""
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=ws, capture_output=True, text=True, env=env)
    ms = (time.perf_counter() - t0) * 1000
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return ms, done.stdout.replace(str(ws), "WS")


def cold(runs: int, pythons: list[str]) -> list[dict[str, list[float]]]:
    """The ms of each run of each cold case in a fresh process, for each of `pythons`' newsflash
    (a checkout's venv), the cases and the codes taken in turn each round (after one round not
    counted: it may compile .pyc files). Each code has its own workspace and cache folders."""
    times: list[dict[str, list[float]]] = [{n: [] for n, _, _ in COLD_CASES} for _ in pythons]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="newsflash-bench-cold-") as tmp:
        places = []
        for n, python in enumerate(pythons):
            (Path(tmp) / str(n)).mkdir()
            ws = copy_sample(Path(tmp) / str(n))
            caches = {c: ws / ("xdg-floor" if c in FLOORS else "xdg") for c, _, _ in COLD_CASES}
            places.append((ws, caches, cold_commands(ws, python)))
        for round_ in range(runs + 1):
            printed: dict[str, str] = {}
            for name, _, _ in COLD_CASES:
                for n, (ws, caches, commands) in enumerate(places):
                    _before(name, ws, caches[name])
                    env["XDG_CACHE_HOME"] = str(caches[name])
                    ms, printed[f"{n} {name}"] = _run(commands[name], ws, env)
                    if round_:
                        times[n][name].append(ms)
            _check_builds(printed, [ws for ws, _, _ in places])
    return times


def _check_builds(printed: dict[str, str], workspaces: list[Path]) -> None:
    """Every build of a round printed the same, and the full build stamped."""
    cases = ("first", "first-new", "again", "cached")
    builds = {printed[f"{n} {name}"] for n in range(len(workspaces)) for name in cases}
    if len(builds) != 1:
        raise SystemExit("the builds printed different things:\n" + str(printed))
    for ws in workspaces:
        if not (ws / "state" / build_stamp.FOLDER / f"{EDITION}.json").is_file():
            raise SystemExit("the full build left no stamp: `again` was a full build")


def cold_rows(runs: int, against: Path | None = None) -> list[Row]:
    """The median beside the bare interpreter's, and the fastest run: on a shared machine the
    nearest to what a quiet one shows; with `against` (another checkout, with its .venv), its
    code's median and fastest, measured in turn with this one's."""
    other = [str(against / ".venv" / "bin" / "python")] if against else []
    times, *others = cold(runs, [sys.executable, *other])
    bare = statistics.median(times["bare"])
    rows: list[Row] = []
    for name, label, target_ms in COLD_CASES:
        ms = statistics.median(times[name])
        target, result = verdict(ms, target_ms, strict=True)
        note = f"{COLD_NOTES[name]}; {ms / bare:.1f}x bare; fastest {min(times[name]):.0f} ms"
        for then in others:
            note += f"; against: {statistics.median(then[name]):.0f} ({min(then[name]):.0f})"
        rows.append((label, f"{ms:.0f} ms", target, result, note))
    return rows


class Split:
    """Wall time per stage of each build, by wrapping the functions the build calls; what no
    stage covers is the rest (the pipeline's own code, the item list, the memo)."""

    def __init__(self) -> None:
        self.stages: list[tuple[object, str, str]] = [
            (pipeline, "load", "read items"),
            (pipeline, "template_hash", "template hash"),
            (pipeline, "assemble", "assemble"),
            (render, "render_key", "cache key"),
            (jinja2.Template, "render", "Jinja2"),
            (mjml, "mjml2html", "MJML"),
            (render_inline.IncrementalInliner, "inline", "premailer"),
            (render, "run_checks", "checks"),
        ]
        self.runs: list[dict[str, float]] = []
        self._saved: list[tuple[object, str, object]] = []

    def __enter__(self) -> Split:
        for owner, name, label in self.stages:
            original = getattr(owner, name)
            self._saved.append((owner, name, original))
            setattr(owner, name, self._timed(original, label))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in self._saved:
            setattr(owner, name, original)

    def _timed(self, fn: Callable[..., object], label: str) -> Callable[..., object]:
        def timed(*args: object, **kwargs: object) -> object:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.runs:
                    run = self.runs[-1]
                    run[label] = run.get(label, 0.0) + (time.perf_counter() - t0) * 1000

        return timed

    def start(self) -> None:
        self.runs.append({})

    def medians(self, totals: list[float]) -> str:
        """Each stage's median, then the rest: the medians of what each build left over."""
        labels = [label for _, _, label in self.stages]
        parts = [f"{b} {statistics.median(r.get(b, 0.0) for r in self.runs):.1f}" for b in labels]
        rest = [t - sum(r.values()) for t, r in zip(totals, self.runs, strict=True)]
        return ", ".join([*parts, f"rest {statistics.median(rest):.1f}"]) + " (ms, medians)"


def one_changed(runs: int, count: int = 30) -> tuple[float, str, str]:
    """Median ms of a rebuild after one item's text changed: the preview's and the scheduler's
    case, where every other item comes from memory (read_cache, the parse cache) and premailer
    inlines only the changed item's block. As there, the other files were written a while
    before: the clock starts once their stat is settled (read_cache.MARGIN_NS), since until
    then they are read again on every build. Timed twice: plain, then with each stage timed
    (the split, whose wrappers cost a little)."""
    with tempfile.TemporaryDirectory(prefix="newsflash-bench-") as tmp:
        config = load_config(synthetic_workspace(Path(tmp), count) / "config.toml")
        renderer = Renderer(config)
        edited = config.submissions_dir / EDITION / "item-001.md"
        original = edited.read_text(encoding="utf-8")
        build_edition(config, EDITION, renderer)
        time.sleep(read_cache.MARGIN_NS / 1e9 + 0.1)
        build_edition(config, EDITION, renderer)
        times: list[float] = []
        split = Split()

        def rebuild(n: int) -> None:
            edited.write_text(original + f"\nEdit number {n}.\n", encoding="utf-8")
            t0 = time.perf_counter()
            build_edition(config, EDITION, renderer)
            times.append((time.perf_counter() - t0) * 1000)

        for n in range(runs):
            rebuild(n)
        ms = statistics.median(times)
        del times[:]
        with split:
            for n in range(runs):
                split.start()
                rebuild(runs + n)
        inliner, splicer = renderer.templates.inliner, renderer.templates.splicer
        note = f"premailer: {inliner.whole} whole, {inliner.blocks_inlined} blocks"
        note += f"; MJML: {splicer.whole} whole, {splicer.spliced} spliced"
        return ms, split.medians(times), note


def verdict(ms: float, target: float | None, *, strict: bool = False) -> tuple[str, str]:
    """The target as printed, and PASS/FAIL ('<' when strict, '<=' otherwise)."""
    if target is None:
        return "-", "info"
    ok = ms < target if strict else ms <= target
    return f"{'<' if strict else '<='} {target:.0f} ms", "PASS" if ok else "FAIL"


def warm_rows(runs: int, profile: bool) -> tuple[list[Row], str]:
    """The warm rows, and the rebuild's split by stage."""
    rows: list[Row] = []
    for count in SIZES:
        ms, note = warm(count, runs, profile=profile and count == 30)
        target, result = verdict(ms, WARM_TARGET_MS.get(count))
        label = f"warm check+build, {count} items"
        rows.append((label, f"{ms:.1f} ms", target, result, f"{note}; unchanged: memo"))
    ms, note = warm(30, runs, kind=Uncached)
    note = "renders; premailer only where changed"
    rows.append(("warm check+build, 30, no memo", f"{ms:.1f} ms", "-", "info", note))
    ms, split, note = one_changed(runs)
    target, result = verdict(ms, CHANGED_TARGET_MS)
    rows.append(("warm rebuild, 1 of 30 changed", f"{ms:.1f} ms", target, result, note))
    return rows, split


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21, help="warm runs per size (median)")
    ap.add_argument("--profile", action="store_true", help="cProfile the 30-item build")
    ap.add_argument("--cold-runs", type=int, default=COLD_RUNS, help="fresh processes per case")
    ap.add_argument("--cold-only", action="store_true", help="only the cold rows")
    ap.add_argument(
        "--against", type=Path, help="another checkout (with .venv/): its cold rows in turn"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="newsflash-bench-warm-") as cache:
        os.environ["XDG_CACHE_HOME"] = cache  # the warm rows' parses kept here, not in ~/.cache
        rows, split = ([], "") if args.cold_only else warm_rows(args.runs, args.profile)
    rows += cold_rows(args.cold_runs, args.against)
    head = ("case", "median", "target", "result", "notes")
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*head))
    print(line.format(*("-" * w for w in widths)))
    for r in rows:
        print(line.format(*r))
    if split:
        print(f"\nwarm rebuild, 1 of 30 changed, by stage: {split}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\nwarm: median of {args.runs} runs after 2 warm-up runs; cold: median of "
        f"{args.cold_runs} fresh processes a case; Python {sys.version.split()[0]}"
        f"; {os.cpu_count()} CPUs; load average {load} (1, 5, 15 min) at the end"
    )
    return 1 if any(r[3] == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
