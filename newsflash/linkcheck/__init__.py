"""Links checked before partners see them: `newsflash check --links` and the proof job.

Below sending/ on purpose (it imports only items, content, config and state/), so a send can
warn about the dead links the last check found without a floor above it. This package's own
import is light: httpx loads with `check` (the CLI imports every command at start).

    found.py   which links an edition has, by item, file and line
    fetch.py   HEAD, then GET; a timeout; a few at a time (httpx)
    cache.py   recent results in state/links.sqlite
    result.py  what a check found
    check.py   check_links, known_dead, dead_links_text
"""
