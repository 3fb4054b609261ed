"""Planted duplicates: the same real person or company entered again, slightly differently.

A duplicate is a copy of an original record with one to three *variations*, at most one from each
group, so that each variation can be checked against the original on its own:

People (lead, contact)
    name: ``typo_firstname``, ``typo_lastname`` (one edit: substitution, deletion, insertion or
    transposition, never the first letter), ``case`` (upper or lower case names), ``accents``
    (Müller -> Muller), ``nickname`` (Robert <-> Bob), ``swap_names`` (first and last exchanged)
    email: ``email_plus`` (jane+crm@...), ``email_case`` (Jane.Doe@Acme.com), ``missing_email``,
    ``email_other`` (another mailbox: a personal one such as jane.doe@gmail.com)
    phone: ``phone_format`` (+44 20 7946 0958 <-> 020 7946 0958 <-> +442079460958), ``missing_phone``,
    ``phone_other`` (another number: a direct line instead of the switchboard)
    company (leads): ``company_suffix`` (Acme Ltd -> Acme Limited / Acme), ``missing_company``
    job: ``missing_jobtitle``
Accounts
    name: ``name_suffix``, ``name_case``, ``name_typo``, ``name_accents``, ``name_and`` (& <-> and),
    ``name_the`` ("The " prefix)
    phone: ``phone_format``, ``missing_phone``
    web: ``missing_website``, ``website_variant`` (http://acme.com/)
    email: ``missing_email``
    address: ``missing_address``, ``postcode_format`` (no space, lower case)

Typos are applied with a comprehension over the few per cent of rows that get one: there is no
array form of "edit one random position of each string", and the subset is small.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from connector.sandbox.seed.common import (
    PHONE_STYLES,
    SECONDS_PER_DAY,
    fold_ascii,
    format_phones,
    guids,
    has_accents,
    phone_parts,
    pick,
    pick_by_group,
    slug,
)
from connector.sandbox.seed.vocab import NICKNAMES, PERSONAL_EMAIL_DOMAINS, SUFFIX_VARIANTS

PERSON_VARIATIONS: dict[str, tuple[str, float]] = {  # kind -> (group, weight)
    "typo_firstname": ("name", 1.0),
    "typo_lastname": ("name", 1.5),
    "case": ("name", 0.8),
    "accents": ("name", 1.5),
    "nickname": ("name", 2.0),
    "swap_names": ("name", 0.6),
    "email_plus": ("email", 0.5),
    "email_case": ("email", 0.6),
    "missing_email": ("email", 0.7),
    "email_other": ("email", 0.6),
    "phone_format": ("phone", 1.5),
    "missing_phone": ("phone", 0.6),
    "phone_other": ("phone", 0.6),
    "company_suffix": ("company", 1.0),
    "missing_company": ("company", 0.4),
    "missing_jobtitle": ("job", 0.4),
}
ACCOUNT_VARIATIONS: dict[str, tuple[str, float]] = {
    "name_suffix": ("name", 2.5),
    "name_case": ("name", 0.8),
    "name_typo": ("name", 1.5),
    "name_accents": ("name", 1.5),
    "name_and": ("name", 1.0),
    "name_the": ("name", 0.4),
    "phone_format": ("phone", 1.5),
    "missing_phone": ("phone", 0.5),
    "missing_website": ("web", 0.6),
    "website_variant": ("web", 0.6),
    "missing_email": ("email", 0.5),
    "missing_address": ("address", 0.5),
    "postcode_format": ("address", 0.5),
}
# How many variations a duplicate gets: 1, 2 or 3.
VARIATION_COUNT_P = (0.45, 0.4, 0.15)

_NICK_TO_FORMAL = {nick: formal for formal, nicks in NICKNAMES.items() for nick in nicks}
_PLUS_TAGS = ["crm", "news", "sales", "work", "2024", "events"]
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def typo(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Apply one keyboard-style edit to each string, never to the first letter, always changing it."""
    values = [str(v) for v in values]
    ops = rng.integers(0, 4, len(values))
    pos_u = rng.random(len(values))
    letters = rng.integers(0, 26, len(values))
    out = []
    for v, op, pu, li in zip(values, ops, pos_u, letters, strict=True):
        pos = 1 + int(pu * max(len(v) - 2, 1))
        ch = _ALPHABET[li]
        if op == 0 and v[pos].lower() != ch:  # substitution
            new = v[:pos] + ch + v[pos + 1 :]
        elif op == 1 and len(v) > 3:  # deletion
            new = v[:pos] + v[pos + 1 :]
        elif op == 2 and pos + 1 < len(v) and v[pos] != v[pos + 1]:  # transposition
            new = v[:pos] + v[pos + 1] + v[pos] + v[pos + 2 :]
        else:  # doubled letter, always a change
            new = v[:pos] + v[pos] + v[pos:]
        out.append(new)
    return np.array(out, dtype=object)


def _choose(rng: np.random.Generator, applicable: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Choose 1-3 applicable variations per row, at most one per group; returns a boolean frame."""
    kinds = list(spec)
    groups = np.array([spec[k][0] for k in kinds])
    weights = np.array([spec[k][1] for k in kinds])
    able = applicable[kinds].to_numpy(copy=True)
    chosen = np.zeros_like(able)
    wanted = rng.choice([1, 2, 3], size=len(able), p=VARIATION_COUNT_P)
    for round_ in range(3):
        scores = np.where(able, rng.random(able.shape) * weights, -1.0)
        best = scores.argmax(axis=1)
        take = (scores.max(axis=1) > 0) & (wanted > round_)
        rows = np.flatnonzero(take)
        chosen[rows, best[rows]] = True
        # The rest of that group is no longer available to this row.
        able[rows] &= groups[None, :] != groups[best[rows]][:, None]
    return pd.DataFrame(chosen, columns=kinds, index=applicable.index)


def _restyle_phone(rng: np.random.Generator, rows: pd.DataFrame, chosen: pd.Series) -> None:
    """Write the same number in another style than the record uses (in place, for chosen rows)."""
    if not chosen.any():
        return
    phones, styles = _restyled(rng, rows.loc[chosen.to_numpy()])
    rows.loc[chosen.to_numpy(), "telephone1"] = phones
    # The copy now uses the new style, so that a copy of this copy differs again.
    rows.loc[chosen.to_numpy(), "_phone_style"] = styles


def _restyled(rng: np.random.Generator, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    current = rows["_phone_style"].to_numpy()
    shift = rng.integers(1, len(PHONE_STYLES), len(rows))
    index = (pd.Series(current).map({s: i for i, s in enumerate(PHONE_STYLES)}).to_numpy() + shift) % len(
        PHONE_STYLES
    )
    styles = np.array(PHONE_STYLES, dtype=object)[index]
    parts = pd.DataFrame(
        {
            "country": rows["_tel_country"].to_numpy(),
            "cc": rows["_tel_cc"].to_numpy(),
            "area": rows["_tel_area"].to_numpy(),
            "sub": rows["_tel_sub"].to_numpy(),
        }
    )
    return format_phones(parts, styles), styles


def _nickname_swap(rng: np.random.Generator, first: pd.Series) -> np.ndarray:
    """Formal name -> one of its nicknames; nickname -> its formal name."""
    formal = first.map(_NICK_TO_FORMAL)
    nick_lists = first.map(NICKNAMES)
    picks = rng.random(len(first))
    nick = [
        lst[int(u * len(lst))] if isinstance(lst, list) else None
        for lst, u in zip(nick_lists, picks, strict=True)
    ]
    return np.where(formal.notna(), formal, np.array(nick, dtype=object))


def _vary_email(rng: np.random.Generator, email: pd.Series, kind: str) -> pd.Series:
    local = email.str.split("@").str[0]
    domain = email.str.split("@").str[1]
    if kind == "email_plus":
        return local + "+" + pd.Series(pick(rng, _PLUS_TAGS, len(email)), index=email.index) + "@" + domain
    # email_case: capitalised words in the local part and the domain.
    return local.str.title() + "@" + domain.str.title()


def vary_people(rng: np.random.Generator, rows: pd.DataFrame, table: str) -> tuple[pd.DataFrame, pd.Series]:
    """Apply person variations to copies of ``rows``; returns the rows and their variation lists."""
    rows = rows.copy()
    first, last = rows["firstname"].fillna(""), rows["lastname"].fillna("")
    email = rows["emailaddress1"]
    known_name = first.isin(list(NICKNAMES)) | first.isin(list(_NICK_TO_FORMAL))
    applicable = pd.DataFrame(
        {
            "typo_firstname": first.str.len() >= 4,
            "typo_lastname": last.str.len() >= 4,
            "case": True,
            "accents": has_accents(first + " " + last),
            "nickname": known_name,
            "swap_names": first.ne(last),
            "email_plus": email.notna(),
            "email_case": email.notna(),
            "missing_email": email.notna() & rows["telephone1"].notna(),
            "email_other": email.notna(),
            "phone_format": rows["telephone1"].notna(),
            "missing_phone": rows["telephone1"].notna() & email.notna(),
            "phone_other": rows["telephone1"].notna(),
            "company_suffix": (table == "lead")
            & rows.get("companyname", pd.Series(None, index=rows.index)).notna()
            & rows.get("_suffix", pd.Series(None, index=rows.index)).isin(list(SUFFIX_VARIANTS)),
            "missing_company": (table == "lead")
            & rows.get("companyname", pd.Series(None, index=rows.index)).notna(),
            "missing_jobtitle": rows["jobtitle"].notna(),
        },
        index=rows.index,
    )
    chosen = _choose(rng, applicable, PERSON_VARIATIONS)

    def apply(kind: str, column: str, values) -> None:
        mask = chosen[kind].to_numpy()
        if mask.any():
            rows.loc[mask, column] = values(rows.loc[mask]) if callable(values) else values

    apply("typo_firstname", "firstname", lambda r: typo(rng, r["firstname"].to_numpy()))
    apply("typo_lastname", "lastname", lambda r: typo(rng, r["lastname"].to_numpy()))
    upper = rng.random(len(rows)) < 0.5
    apply(
        "case",
        "firstname",
        lambda r: np.where(upper[chosen["case"]], r["firstname"].str.upper(), r["firstname"].str.lower()),
    )
    apply(
        "case",
        "lastname",
        lambda r: np.where(upper[chosen["case"]], r["lastname"].str.upper(), r["lastname"].str.lower()),
    )
    apply("accents", "firstname", lambda r: fold_ascii(r["firstname"]).to_numpy())
    apply("accents", "lastname", lambda r: fold_ascii(r["lastname"]).to_numpy())
    apply("nickname", "firstname", lambda r: _nickname_swap(rng, r["firstname"]))
    swap = chosen["swap_names"].to_numpy()
    rows.loc[swap, ["firstname", "lastname"]] = rows.loc[swap, ["lastname", "firstname"]].to_numpy()
    apply(
        "email_plus", "emailaddress1", lambda r: _vary_email(rng, r["emailaddress1"], "email_plus").to_numpy()
    )
    apply(
        "email_case", "emailaddress1", lambda r: _vary_email(rng, r["emailaddress1"], "email_case").to_numpy()
    )
    apply("missing_email", "emailaddress1", None)
    apply("email_other", "emailaddress1", lambda r: _other_mailbox(rng, r, first[r.index], last[r.index]))
    _restyle_phone(rng, rows, chosen["phone_format"])
    apply("missing_phone", "telephone1", None)
    _other_phone(rng, rows, chosen["phone_other"])
    if table == "lead":
        apply("company_suffix", "companyname", lambda r: _suffix_variant(rng, r))
        apply("missing_company", "companyname", None)
    apply("missing_jobtitle", "jobtitle", None)
    return rows, _variation_lists(chosen)


def _other_mailbox(
    rng: np.random.Generator, rows: pd.DataFrame, first: pd.Series, last: pd.Series
) -> np.ndarray:
    """A different mailbox of the same person: a personal address built from their real name."""
    countries = rows["address1_country"].to_numpy()
    domain = pd.Series(pick_by_group(rng, countries, PERSONAL_EMAIL_DOMAINS, 1.0), index=rows.index)
    digits = pd.Series(rng.integers(10, 100, len(rows)), index=rows.index).astype(str)
    local = slug(first) + "." + slug(last) + digits.where(rng.random(len(rows)) < 0.4, "")
    other = (local + "@" + domain).to_numpy(dtype=object)
    same = other == rows["emailaddress1"].to_numpy(dtype=object)
    other[same] = (local[same] + "1@" + domain[same]).to_numpy(dtype=object)
    return other


def _other_phone(rng: np.random.Generator, rows: pd.DataFrame, chosen: pd.Series) -> None:
    """Give chosen rows another number in the same city (in place, with its parts)."""
    mask = chosen.to_numpy()
    if not mask.any():
        return
    parts = phone_parts(rng, rows.loc[mask, "_city_index"].to_numpy())
    rows.loc[mask, "telephone1"] = format_phones(parts, rows.loc[mask, "_phone_style"].to_numpy())
    for col in ("cc", "area", "sub"):
        rows.loc[mask, "_tel_" + col] = parts[col].to_numpy()
    rows.loc[mask, "_tel_country"] = parts["country"].to_numpy()


def _suffix_variant(rng: np.random.Generator, rows: pd.DataFrame) -> np.ndarray:
    """The same company written with another form of its legal suffix (or none)."""
    variants = rows["_suffix"].map(SUFFIX_VARIANTS)
    u = rng.random(len(rows))
    chosen = np.array([lst[int(x * len(lst))] for lst, x in zip(variants, u, strict=True)], dtype=object)
    base = rows["_base"].to_numpy(dtype=object)
    return np.where(chosen == "", base, base + " " + chosen)


def _variation_lists(chosen: pd.DataFrame) -> pd.Series:
    """Semicolon-separated variation names per row, in a fixed order."""
    out = pd.Series("", index=chosen.index, dtype=object)
    for kind in chosen.columns:
        mask = chosen[kind]
        out[mask] = out[mask] + ";" + kind
    return out.str.lstrip(";")


def vary_accounts(rng: np.random.Generator, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Apply account variations to copies of ``rows``; returns the rows and their variation lists."""
    rows = rows.copy()
    name = rows["name"]
    applicable = pd.DataFrame(
        {
            "name_suffix": rows["_suffix"].isin(list(SUFFIX_VARIANTS)),
            "name_case": True,
            "name_typo": rows["_base"].str.len() >= 4,
            "name_accents": has_accents(name),
            "name_and": name.str.contains(" & ", regex=False),
            "name_the": ~name.str.startswith("The "),
            "phone_format": rows["telephone1"].notna(),
            "missing_phone": rows["telephone1"].notna(),
            "missing_website": rows["websiteurl"].notna(),
            "website_variant": rows["websiteurl"].notna(),
            "missing_email": rows["emailaddress1"].notna(),
            "missing_address": rows["address1_line1"].notna(),
            "postcode_format": rows["address1_postalcode"].str.contains(" ", regex=False).fillna(False),
        },
        index=rows.index,
    )
    chosen = _choose(rng, applicable, ACCOUNT_VARIATIONS)

    def apply(kind: str, column: str, values) -> None:
        mask = chosen[kind].to_numpy()
        if mask.any():
            rows.loc[mask, column] = values(rows.loc[mask]) if callable(values) else values

    upper = rng.random(len(rows)) < 0.5
    apply("name_suffix", "name", lambda r: _suffix_variant(rng, r))
    apply(
        "name_case",
        "name",
        lambda r: np.where(upper[chosen["name_case"]], r["name"].str.upper(), r["name"].str.lower()),
    )
    apply("name_typo", "name", lambda r: typo(rng, r["_base"].to_numpy()) + " " + r["_suffix"].to_numpy())
    apply("name_accents", "name", lambda r: fold_ascii(r["name"]).to_numpy())
    apply("name_and", "name", lambda r: r["name"].str.replace(" & ", " and ", regex=False).to_numpy())
    apply("name_the", "name", lambda r: ("The " + r["name"]).to_numpy())
    _restyle_phone(rng, rows, chosen["phone_format"])
    apply("missing_phone", "telephone1", None)
    apply("missing_website", "websiteurl", None)
    apply("website_variant", "websiteurl", lambda r: ("http://" + r["_domain"] + "/").to_numpy())
    apply("missing_email", "emailaddress1", None)
    for column in ("address1_line1", "address1_postalcode"):
        apply("missing_address", column, None)
    apply(
        "postcode_format",
        "address1_postalcode",
        lambda r: r["address1_postalcode"].str.replace(" ", "", regex=False).str.lower().to_numpy(),
    )
    return rows, _variation_lists(chosen)


def plant(
    rng: np.random.Generator,
    originals: pd.DataFrame,
    rate: float,
    id_column: str,
    vary: Callable[[np.random.Generator, pd.DataFrame], tuple[pd.DataFrame, pd.Series]],
    now_s: int,
) -> pd.DataFrame:
    """Copy a share of ``originals`` as varied duplicates with new ids, entered after the original.

    Args:
        rng: the random stream.
        originals: the table's records (with private ``_entity`` and ``_created_s``).
        rate: duplicates per original record (e.g. 0.03); a fifth of the duplicated entities get two.
        id_column: the primary key column to regenerate.
        vary: ``vary_people``-like callable ``(rng, rows) -> (rows, variations)``.
        now_s: the generation instant; duplicates are never entered after it.

    Returns:
        The duplicate rows, with ``_variations`` (semicolon-separated) and ``_original_id``.
    """
    n_dups = round(rate * len(originals))
    n_entities = round(n_dups / 1.2)
    source = rng.choice(len(originals), size=n_entities, replace=False)
    twice = source[: n_dups - n_entities]
    rows = originals.iloc[np.concatenate([source, twice])].reset_index(drop=True)
    varied, variations = vary(rng, rows)
    varied[id_column] = guids(rng, len(varied))
    delay = rng.exponential(90.0, len(varied)) * SECONDS_PER_DAY
    created = rows["_created_s"].to_numpy() + delay
    varied["_created_s"] = np.minimum(created, now_s - rng.uniform(60, 3 * SECONDS_PER_DAY, len(varied)))
    varied["_created_s"] = np.maximum(varied["_created_s"], rows["_created_s"].to_numpy() + 60)
    varied["_variations"] = variations.to_numpy()
    varied["_original_id"] = rows[id_column].to_numpy()
    return varied


def namesakes(rng: np.random.Generator, frame: pd.DataFrame, share: float) -> tuple[pd.DataFrame, int]:
    """Give a share of records the first and last name of another, unrelated record.

    These are the look-alike *non*-duplicates (two different Jane Smiths): without them precision
    cannot be measured. Returns the frame and how many records were renamed.
    """
    n = round(share * len(frame))
    targets = rng.choice(len(frame), size=n, replace=False)
    donors = rng.choice(len(frame), size=n, replace=True)
    keep = frame["_entity"].to_numpy()[targets] != frame["_entity"].to_numpy()[donors]
    targets, donors = targets[keep], donors[keep]
    frame = frame.copy()
    cols = [frame.columns.get_loc("firstname"), frame.columns.get_loc("lastname")]
    frame.iloc[targets, cols] = frame.iloc[donors, cols].to_numpy()
    # The renamed person's mailbox follows their new name (same domain), so nothing gives them away.
    renamed = frame.iloc[targets]
    domain = renamed["emailaddress1"].str.split("@").str[1]
    local = slug(renamed["firstname"]) + "." + slug(renamed["lastname"])
    email = (local + "@" + domain).where(domain.notna(), None)
    frame.iloc[targets, frame.columns.get_loc("emailaddress1")] = email.to_numpy(dtype=object)
    return frame, len(targets)


def distinct_people(
    rng: np.random.Generator, contacts: pd.DataFrame, leads: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Make different people distinguishable where real data would: mailbox and name at one company.

    Two different people never share a mailbox, and two colleagues rarely share a full name. Drawn
    names and house email styles (``jsmith@``, ``pierre@``) collide by chance, which would plant
    duplicates the ground truth does not know about. Colleagues with the same full name get another
    first name; a mailbox already taken gets the ``first.last2@`` form. Call this before any
    duplicate or returning lead is added: every row here is a different person.
    """
    contacts, leads = contacts.copy(), leads.copy()
    both = pd.concat(
        [
            pd.DataFrame({"frame": 0, "row": np.arange(len(contacts)), "company": contacts["_company"]}),
            pd.DataFrame({"frame": 1, "row": np.arange(len(leads)), "company": leads["companyname"]}),
        ],
        ignore_index=True,
    )
    frames = (contacts, leads)

    def column(name: str) -> pd.Series:
        return pd.concat([contacts[name], leads[name]], ignore_index=True)

    def write(name: str, mask: np.ndarray, values: np.ndarray) -> None:
        for code, frame in enumerate(frames):
            sel = mask & (both["frame"].to_numpy() == code)
            frame.iloc[both["row"].to_numpy()[sel], frame.columns.get_loc(name)] = values[sel[mask]]

    # Same full name at the same company: draw another first name (from the same people's pool).
    first, last = column("firstname"), column("lastname")
    key = (
        fold_ascii(first).str.lower() + "|" + fold_ascii(last).str.lower() + "|" + both["company"].str.lower()
    )
    clash = (key.duplicated() & both["company"].notna()).to_numpy()
    if clash.any():
        donors = rng.integers(0, len(first), int(clash.sum()))
        new_first = pd.Series(first.to_numpy(dtype=object)[donors])
        write("firstname", clash, new_first.to_numpy(dtype=object))
        domain = column("emailaddress1")[clash].str.split("@").str[1].reset_index(drop=True)
        local = slug(new_first) + "." + slug(last[clash].reset_index(drop=True))
        write(
            "emailaddress1", clash, (local + "@" + domain).where(domain.notna(), None).to_numpy(dtype=object)
        )
    # A mailbox belongs to one person: later holders get first.last<k>@domain. Only those few
    # rows are rewritten, so the text work stays small.
    for _ in range(3):
        email = column("emailaddress1")
        lowered = email.str.lower()
        taken = (lowered.duplicated() & lowered.notna()).to_numpy()
        if not taken.any():
            break
        rank = (
            lowered.groupby(lowered).cumcount().to_numpy()[taken] + 1 + rng.integers(0, 9, int(taken.sum()))
        )
        domain = email[taken].str.split("@").str[1].reset_index(drop=True)
        names = slug(column("firstname")[taken]) + "." + slug(column("lastname")[taken])
        local = names.reset_index(drop=True) + pd.Series(rank).astype(str)
        write("emailaddress1", taken, (local + "@" + domain).to_numpy(dtype=object))
    return contacts, leads
