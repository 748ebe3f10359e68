"""The French and English word lists that several stages read, in one place.

Each stage composes what it needs from these: the analyser's stopwords
(:mod:`sourcier.analysis`), the cues of a question's language
(:mod:`sourcier.ingest.language`), the words that make a follow-up lean on the previous
turn (:mod:`sourcier.answer.question`), the capitalised words that are not names of
things (:mod:`sourcier.answer.refusal`, :mod:`sourcier.answer.verify`), and month names
for dates, sentence splitting, answer types and display.
"""

from __future__ import annotations

import unicodedata


def _words(block: str) -> tuple[str, ...]:
    return tuple(block.split())


def unaccented(word: str) -> str:
    """``word`` without its accents ("février" -> "fevrier", "août" -> "aout")."""
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# ----------------------------------------------------------------------------- calendar

MONTHS_FR = _words("janvier février mars avril mai juin juillet août septembre octobre "
                   "novembre décembre")  # fmt: skip
MONTHS_EN = _words("january february march april may june july august september october "
                   "november december")  # fmt: skip

MONTH_ABBREVIATIONS_FR: dict[str, int] = {
    "janv": 1, "févr": 2, "fevr": 2, "fév": 2, "avr": 4, "juil": 7, "déc": 12,
}  # fmt: skip
MONTH_ABBREVIATIONS_EN: dict[str, int] = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sept": 9,
    "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
"""Abbreviated month names, lower-case, without their final period ("sept", "oct" and
"nov" are French too)."""

MONTH_NUMBERS_EN: dict[str, int] = {
    **{name: n for n, name in enumerate(MONTHS_EN, start=1)},
    **MONTH_ABBREVIATIONS_EN,
}
"""English month names, full or abbreviated, lower-case -> their number."""

MONTH_NUMBERS: dict[str, int] = {
    **MONTH_NUMBERS_EN,
    **{name: n for n, name in enumerate(MONTHS_FR, start=1)},
    **{unaccented(name): n for n, name in enumerate(MONTHS_FR, start=1)},
    **MONTH_ABBREVIATIONS_FR,
}
"""Every month name this package reads, French or English, full or abbreviated, with or
without accents, lower-case -> its number."""

MONTH_ABBREVIATIONS = frozenset(MONTH_ABBREVIATIONS_FR) | frozenset(MONTH_ABBREVIATIONS_EN)
"""Every abbreviated month name ("sept. 2011" does not end a sentence)."""

FULL_MONTH_NAMES: frozenset[str] = frozenset(
    {*MONTHS_FR, *MONTHS_EN, *(unaccented(m) for m in MONTHS_FR)}
)
"""Full month names, lower-case, French with and without accents, and English."""

DAYS_FR = _words("lundi mardi mercredi jeudi vendredi samedi dimanche")
DAYS_EN = _words("monday tuesday wednesday thursday friday saturday sunday")

# ----------------------------------------------------------------------------- questions

QUESTION_WORDS_FR = frozenset(
    _words(
        "qui que quoi quel quelle quels quelles combien où quand comment pourquoi lequel "
        "laquelle lesquels lesquelles"
    )  # fmt: skip
)
QUESTION_WORDS_EN = frozenset(_words("who whom whose what when where which why how"))

PRONOUNS = frozenset(
    _words(
        """
        le la les lui leur leurs il elle ils elles celui celle ceux celles cela ça ce cet
        cette ces son sa ses y en
        it its they them their he she him her his this that these those there
        """
    )
)
"""Words that point back to something said before: a short question with one of them
leans on the previous turn ("Et qui le préside ?")."""

# ----------------------------------------------------------------------------- function words

SNOWBALL_STOPWORDS_FR = frozenset(
    _words(
        """
        au aux avec ce ces dans de des du elle en et eux il ils je la le les leur lui ma mais me
        même mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te
        tes toi ton tu un une vos votre vous c d j l à m n s t y
        été étée étées étés étant étante étants étantes suis es est sommes êtes sont serai seras
        sera serons serez seront serais serait serions seriez seraient étais était étions étiez
        étaient fus fut fûmes fûtes furent sois soit soyons soyez soient fusse fusses fût fussions
        fussiez fussent ayant ayante ayantes ayants eu eue eues eus ai as avons avez ont aurai
        auras aura aurons aurez auront aurais aurait aurions auriez auraient avais avait avions
        aviez avaient eut eûmes eûtes eurent aie aies ait ayons ayez aient eusse eusses eût
        eussions eussiez eussent
        """
    )
)
"""The Snowball French stopword list (snowballstem.org/algorithms/french/stop.txt)."""

MORE_STOPWORDS_FR = frozenset(_words("a ceci cela ça cet cette dont où leurs")) | QUESTION_WORDS_FR
"""French function words the Snowball list leaves out, notably the question words."""

STOPWORDS_EN = frozenset(
    _words(
        """
        the of and is are was were be been being who whom whose what which when where why how
        does do did to in at for with by from about into that this these those it its or there
        their they them has have had can will would should could i you he she we his her our
        your my me than then also
        """
    )
)
"""English function words: people ask in English too."""

CUES_FR = frozenset(
    _words(
        """
        le la les un une des du de et est sont été était dans pour par sur avec sans il elle
        ils elles ce cette ces sa ses leur leurs au aux ne pas nous vous je tu mon ma mes notre
        votre entre chez depuis vers selon lors après avant aussi mais donc ont fait peut faut
        y en se parle dit ou
        """
    )
)
"""Function words that are French only ("a", "on", "son", "plus", "or", "an" are words
in both languages, so they are left out): a question using them is French."""

CUES_EN = frozenset(
    _words(
        """
        the is are was were do does did of to in for with and by about at from this that
        these those it its be been has have had will would can could should many much there
        their they he she his her any some not into between since after before also but than
        most happen happened tell me says said
        """
    )
)
"""Function words that are English only: a question using them is English."""

ARTICLES_FR = frozenset(_words("le la les un une des du de en au aux et mais selon"))
"""French articles, prepositions and conjunctions that may start a sentence with a capital."""

ARTICLES_EN = frozenset(
    _words("a an the of on in at for to from with by and but or according")
)  # fmt: skip
"""English articles, prepositions and conjunctions that may start a sentence with a
capital."""

DEMONYMS = _words(
    "french english british european finnish german italian spanish american mediterranean "
    "marseilles"
)
"""Adjectives of place and people, written with a capital in English, not names of things."""
