"""Online template mining: one generic configuration for every source.

How a message is mined:

1. Only its first ``max_message_chars`` characters (and ``max_tokens`` tokens) are read.
2. Tokens are split on whitespace (a ``key="quoted value"`` stays one token), then cut at
   ``,``/``;``/``|`` into pieces, and each piece is masked generically: the value of
   ``key=value``, the value of ``key:value`` when it looks variable, and any piece that holds a
   digit, is true/false/null/none/nil, a month or weekday abbreviation, an absolute path or a
   URL become ``<*>``. No per-source masks exist.
3. Exact repeats of the masked token sequence hit a dictionary (no search at all).
4. Otherwise candidates are the templates with the same token count and first two masked
   tokens (Drain's prefix tree, flattened into one dict). Similarity is the share of the
   message's non-wildcard tokens the template has at the same position; the best template
   at or above ``sim_threshold`` (0.75) absorbs the message, positions that differ become
   ``<*>`` (``key=<*>`` when they share ``key=``): the template generalizes, gets a new id and
   the old id is reported in ``previous_id``. Otherwise a new template starts.

Ids are the first 16 hex digits of BLAKE2b over the template text, so they are the same on
every worker and after a restart. The store is bounded: beyond ``max_templates`` the least
recently matched template is evicted (LRU); the exact-repeat cache is LRU-bounded too.

Owns masking (``masking``), clustering (``miner``), ids (``identity``) and the worker's store
(``store``); imports transport and sinks only, never sources, parse, windows or the worker.
"""

from streams.templates.identity import WILDCARD, template_id
from streams.templates.masking import mask_token, split_tokens
from streams.templates.miner import TemplateMatch, TemplateMiner

__all__ = ["WILDCARD", "TemplateMatch", "TemplateMiner", "mask_token", "split_tokens", "template_id"]
