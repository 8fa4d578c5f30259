"""Online template mining: one generic configuration for every source.

How a message is mined (``masking``, ``miner``, ``identity``):

1. Only its first ``max_message_chars`` characters (and ``max_tokens`` tokens) are read.
2. Its tokens are masked generically (``masking``): numbers, ids, addresses, paths, URLs, host
   names, dates, values of ``key=value``... become ``<*>``; adjacent variables become one.
3. Exact repeats of the masked token sequence hit a dictionary (no search at all).
4. Otherwise candidates are the templates with the same token count and first masked token
   (Drain's prefix tree, flattened into one dict). Similarity is the share of the message's
   non-wildcard tokens the template has at the same position (``key=a`` and ``key=b`` count
   as the same); the best template at or above ``sim_threshold`` absorbs the message, and
   positions that differ become ``<*>`` (``key=<*>`` when they share ``key=``): the template
   *generalizes*, its id stays. Otherwise a new template is born.
5. A template's id is given at birth from the masked form of its first message
   (``identity``) and never changes; when two templates generalize into the same text the
   older id survives and the other becomes its alias.

The store is bounded: beyond ``max_templates`` the least recently matched template is
evicted (LRU); the exact-repeat cache, the token cache and the aliases are bounded too.

Owns masking (``masking``), clustering (``miner``), ids (``identity``) and the worker's store
(``store``); imports transport and sinks only, never sources, parse, windows or the worker.
"""

from streams.templates.identity import WILDCARD, Aliases, template_id
from streams.templates.masking import mask_token, split_tokens
from streams.templates.miner import TemplateChange, TemplateMatch, TemplateMiner

__all__ = ["WILDCARD", "Aliases", "TemplateChange", "TemplateMatch", "TemplateMiner", "mask_token",
           "split_tokens", "template_id"]
