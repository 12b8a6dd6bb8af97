"""A gazetteer of person names for the privacy check, from a maintained package (no download).

The given names and family names are those of Faker's person providers (``faker``, 80+
locales, Latin script kept: about 21,000 given names and 21,000 family names). Words that
are also common English words ("Will", "May", "Grant", "Page") or names of places, months,
tools and languages ("Paris", "June", "Julia", "Ruby") are *ambiguous*: alone they are a
name only mid-sentence and never a month or a tool; followed by a family name or an
initial they are a name anywhere.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from functools import lru_cache

_LATIN = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’-]{2,}$")
_GIVEN_ATTRS = ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary")

#: Never a person on their own: months, days, tools, languages and products that are also given names.
NOT_PERSONS = frozenset("""
january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday
julia ruby ada alexa siri cortana watson jenkins kafka django flask spark hadoop azure oracle apple amazon
google meta tesla ford dell lambda sage maven gradle pascal turing ampere volta hopper kepler keras
christmas easter god lord jesus allah mercedes porsche ferrari toyota honda nike adidas rolex
english french german spanish italian portuguese chinese japanese korean russian arabic dutch polish hindi
indian asian african european american canadian british mexican brazilian asia europe africa america
san santa los las new saint st ville les le la de da di du ah ma my
bert atlas deb geo terra skip liberty tea star elle brain achieve reasons phd master wolf evans hughes
""".split())
#: Given names that are also everyday words or places: a name only mid-sentence, or with a surname.
COMMON_WORDS = frozenset("""
will may mark bill grant hope faith joy rose art sky summer june april august max ray dawn iris lily ruby
pearl jade amber page chase rich frank sandy wade drew sue pat gene jack don guy long young case price king
bell hall park stone grace lane court rob sunny happy bob cliff dale glen heath holly ivy jay jewel lance
miles neil penny rob robin rocky rusty scott sterling storm tad tom victor violet wayne woody bud buck
dash gay ernest noble major earl prince duke baron sage star ace an al bo cat di eve ian jo kit lu mae
mo ned nat ty val van vi paris georgia virginia florence jordan austin victoria sydney china india
lincoln dallas houston phoenix denver orlando chelsea london berlin vienna adelaide alexandria
carolina dakota savannah madison camden kent york israel
""".split())
#: Two-letter given names worth a warning (other two-letter "names" are mostly words or syllables).
SHORT_NAMES = frozenset("ed al bo jo cy ty vi mo li lu wu xu yu".split())


@dataclass(frozen=True)
class Gazetteer:
    """Lower-cased given names and family names, and the words that make a given name ambiguous."""

    given: frozenset[str]
    family: frozenset[str]
    common: frozenset[str]
    not_persons: frozenset[str]


def _names(value: object) -> list[str]:
    if isinstance(value, dict):
        value = list(value)
    if not isinstance(value, (list, tuple, set, frozenset)):
        return []
    return [n.lower() for n in value if isinstance(n, str) and _LATIN.match(n)]


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The gazetteer, built once per process from Faker's person providers (about 0.3 s)."""
    import faker.providers.address.en as address
    import faker.providers.address.en_US as states
    import faker.providers.job.en_US as jobs
    import faker.providers.lorem.en_US as lorem
    import faker.providers.person as person
    from spacy.lang.en.stop_words import STOP_WORDS

    given: set[str] = set()
    family: set[str] = set()
    for mod in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{mod.name}").Provider
        for attr in _GIVEN_ATTRS:
            given.update(_names(vars(provider).get(attr)))
        family.update(_names(vars(provider).get("last_names")))
    given = {n for n in given if len(n) > 2 or n in SHORT_NAMES}
    # Faker's English lorem words, job titles, countries and states are everyday words ("will",
    # "page", "engineer", "jordan"): as names they are ambiguous.
    common = COMMON_WORDS | _words(*lorem.Provider.word_list, *jobs.Provider.jobs) | set(STOP_WORDS)
    places = _words(*address.Provider.countries, *states.Provider.states)  # "Jordan", "Georgia": places first
    return Gazetteer(frozenset(given), frozenset(family), frozenset(common | places), NOT_PERSONS | places)


def _words(*phrases: str) -> set[str]:
    return {w.lower() for phrase in phrases for w in re.findall(r"[^\W\d_]+", phrase)}


__all__ = ["COMMON_WORDS", "Gazetteer", "NOT_PERSONS", "SHORT_NAMES", "gazetteer"]
