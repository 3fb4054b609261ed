"""Common English given-name nicknames and short forms, mapped to one formal name.

Used by :func:`.normalize.canonical_given_name` so that "Bob Smith" and "Robert Smith" compare
as the same first name. The list is written for this project from general knowledge of
English-language naming (it is not copied from any dataset). A nickname that stands for several
formal names ("Al": Albert, Alan, Alfred) maps to the most frequent one; the fuzzy name comparison
still catches the others by spelling. Keys and values are lower-case ASCII, as produced by
:func:`jobs.leads.duplicates.normalize.normalize_text`.
"""

from __future__ import annotations

from types import MappingProxyType

# formal name -> its usual nicknames and short forms
_FORMS: dict[str, tuple[str, ...]] = {
    "abigail": ("abby", "abbie", "gail"),
    "albert": ("al", "bert", "bertie"),
    "alexander": ("alex", "alec", "sandy", "xander", "lex"),
    "alexandra": ("alexa", "lexi", "sasha", "sandra"),
    "alfred": ("alf", "alfie", "fred"),
    "andrew": ("andy", "drew"),
    "anthony": ("tony", "ant"),
    "barbara": ("barb", "babs"),
    "benjamin": ("ben", "benny", "benji"),
    "catherine": ("cathy", "cath", "kate", "katie", "kathy", "katherine", "kathryn", "cat"),
    "charles": ("charlie", "chuck", "chas", "chaz"),
    "christina": ("tina", "chrissy", "christine"),
    "christopher": ("chris", "kit", "topher"),
    "daniel": ("dan", "danny"),
    "david": ("dave", "davy", "davie"),
    "deborah": ("deb", "debbie", "debra"),
    "donald": ("don", "donnie"),
    "dorothy": ("dot", "dottie", "dolly"),
    "edward": ("ed", "eddie", "ned", "ted", "teddy"),
    "elizabeth": ("liz", "lizzie", "beth", "betty", "betsy", "eliza", "libby", "lisa", "elise"),
    "eleanor": ("ellie", "nell", "nora"),
    "emily": ("em", "emmy"),
    "frances": ("fran", "frankie"),
    "francis": ("frank",),
    "frederick": ("freddie", "freddy"),
    "gabriel": ("gabe",),
    "gregory": ("greg",),
    "harold": ("harry", "hal"),
    "henry": ("hank",),
    "isabella": ("bella", "izzy", "isabel", "isabelle"),
    "jacob": ("jake",),
    "james": ("jim", "jimmy", "jamie", "jimbo"),
    "jennifer": ("jen", "jenny", "jenn"),
    "jessica": ("jess", "jessie"),
    "john": ("johnny", "jack", "jon"),
    "jonathan": ("jonny", "jonty"),
    "joseph": ("joe", "joey", "jos"),
    "joshua": ("josh",),
    "judith": ("judy", "jude"),
    "kenneth": ("ken", "kenny"),
    "kimberly": ("kim", "kimmy"),
    "lawrence": ("larry", "laurie", "lawrie"),
    "leonard": ("leo", "len", "lenny"),
    "louis": ("lou",),
    "margaret": ("maggie", "meg", "peggy", "marge", "madge", "greta", "margo", "rita"),
    "matthew": ("matt", "matty"),
    "michael": ("mike", "mikey", "mick", "mickey", "mitch"),
    "nathaniel": ("nate", "nat", "nathan"),
    "nicholas": ("nick", "nicky", "nico"),
    "pamela": ("pam",),
    "patricia": ("pat", "patty", "patsy", "trish", "tricia"),
    "patrick": ("paddy",),
    "peter": ("pete",),
    "philip": ("phil", "pip", "phillip"),
    "rebecca": ("becky", "becca", "bex"),
    "richard": ("rick", "ricky", "rich", "dick", "richie"),
    "robert": ("bob", "bobby", "rob", "robbie", "bert"),
    "ronald": ("ron", "ronnie"),
    "samantha": ("sam", "sammy"),
    "samuel": ("sammie",),
    "stephen": ("steve", "stevie", "steven"),
    "susan": ("sue", "susie", "suzy", "suzanne"),
    "theodore": ("theo",),
    "thomas": ("tom", "tommy", "thom"),
    "timothy": ("tim", "timmy"),
    "victoria": ("vicky", "vicki", "tori"),
    "vincent": ("vince", "vinny"),
    "walter": ("walt", "wally"),
    "william": ("will", "bill", "billy", "willy", "liam", "willie"),
    "zachary": ("zach", "zack", "zak"),
}


def _invert(forms: dict[str, tuple[str, ...]]) -> dict[str, str]:
    inverted: dict[str, str] = {}
    for formal, nicks in forms.items():
        for nick in nicks:
            # First mapping wins, so an ambiguous form keeps the formal name listed first above.
            inverted.setdefault(nick, formal)
    return inverted


NICKNAMES: MappingProxyType[str, str] = MappingProxyType(_invert(_FORMS))
"""Nickname or short form -> formal given name (read-only)."""
