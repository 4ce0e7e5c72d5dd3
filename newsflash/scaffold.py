"""The text of a new item file, so `newsflash new` and the contributors' page agree."""

from __future__ import annotations


def item_template(section: str, title: str, date: str) -> str:
    """A complete, valid item file with every optional field shown and commented."""
    return f"""---
title: {title}
section: {section}
date: {date}
status: draft              # change to 'ready' when it may go into an edition
organisation: ""           # your working group or organisation
author: ""
summary: ""                # one or two sentences
# link: https://example.org/more
# link_text: Read more
# image: https://example.org/picture.jpg
# image_alt: What the picture shows
# order: 10                # lower comes first within the section
# edition: "2022-03"       # pin to an edition (YYYY-MM)
# contact: you@example.org # where notices about this file go
---
Write the item here in Markdown: paragraphs, **bold**, *italics*, lists and
[links](https://example.org).
"""
