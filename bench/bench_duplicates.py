"""Benchmark: duplicate detection on 100,000 realistic leads with planted duplicates.

Prints wall time and peak memory of ``find_duplicates`` + ``cluster`` and the precision/recall on
the planted duplicates. Targets (issue 5): under 60 s and under 2 GB on a 2-core machine.

    .venv/bin/python bench/bench_duplicates.py [--records 100000] [--seed 0] [--source sandbox|synthetic]

Peak memory is the process's maximum resident set size (``resource.getrusage``); the data is
generated in a child process, so the figure covers the interpreter, pandas, the loaded leads and
the job, an upper bound for the job itself. (tracemalloc is not used: it slows every allocation
and would distort the time.) CPU time is printed beside wall time because the machine is shared.

By default the leads come from the sandbox's seed generator (``connector.sandbox.seed.generate``,
size "medium" scaled to the requested count), mapped to canonical columns with
``mappings/lead.toml``: realistic leads where colleagues share their company's name, switchboard
and address, with planted duplicates and their ground truth. ``--source synthetic`` builds leads
with this file's own generator instead: names with a realistic frequency skew (a few
very common surnames, a long tail of rare ones), companies with legal suffixes, emails, phones in
national and international formats, addresses; 20% of people get one or two duplicate leads with
the mistakes CRM data has (typos, nicknames, swapped first/last names, plus-addressed or
re-cased emails, reformatted phones, a changed company suffix, missing values).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.leads.duplicates.clustering import cluster  # noqa: E402 - after the path set-up above
from jobs.leads.duplicates.config import load_duplicate_config  # noqa: E402
from jobs.leads.duplicates.detect import find_duplicates  # noqa: E402


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "james mary john patricia robert jennifer michael linda william elizabeth david barbara richard "
    "susan joseph jessica thomas sarah charles karen christopher nancy daniel lisa matthew betty "
    "anthony margaret mark sandra donald ashley steven kimberly paul emily andrew donna joshua michelle "
    "kenneth dorothy kevin carol brian amanda george melissa edward deborah ronald stephanie timothy "
    "rebecca jason sharon jeffrey laura ryan cynthia jacob kathleen gary amy nicholas shirley eric "
    "angela jonathan helen stephen anna larry brenda justin pamela scott nicole brandon emma benjamin "
    "samantha samuel katherine gregory christine frank debra alexander rachel raymond catherine patrick "
    "carolyn jack janet dennis ruth jerry maria tyler heather aaron diane jose virginia adam julie "
    "henry joyce nathan victoria douglas olivia zachary kelly peter christina kyle lauren walter joan "
    "ethan evelyn jeremy judith harold megan keith cheryl christian andrea roger hannah noah martha "
    "gerald jacqueline carl frances terry gloria sean ann austin teresa arthur kathryn lawrence sara "
    "jesse janice dylan jean bryan alice joe madison jordan doris billy abigail bruce julia albert "
    "judy willie grace gabriel denise logan amber alan marilyn juan beverly wayne danielle roy theresa"
)
COMMON_LAST = _words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez "
    "gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris "
    "sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill "
    "flores green adams nelson baker hall rivera campbell mitchell carter roberts"
)
SYLLABLES = _words(
    "ka lo mi ren dar vin sel tor ba qui nor fel gar hal jen mor pel ras sto ven wil xan yor zan bri "
    "cla dre fro gri kle pra stu tha vor ash bel cor dun eld fin gol har ing jor kel lin mar nes ost"
)
COMPANY_WORDS = _words(
    "acme global united pacific atlantic northern summit pioneer vertex quantum blue river stone oak "
    "cedar silver golden apex prime delta alpha nova bright clear rapid solid true green harbor "
    "systems solutions logistics foods energy health software consulting partners industries labs "
    "media capital retail motors analytics dynamics networks foods bakery brewing design"
)
SUFFIXES = ["Inc", "Inc.", "LLC", "Ltd", "Ltd.", "GmbH", "SA", "Corp", "Co.", "", "", ""]
STREETS = _words("main oak pine maple cedar elm washington lake hill park church high mill station river")
STREET_TYPES = ["Street", "St", "Road", "Rd", "Avenue", "Ave", "Lane", "Drive"]
CITIES = [f"{a}{b}" for a in ("spring", "river", "oak", "green", "fair", "lake", "north", "west") for b in (
    "field", "ton", "ville", "wood", "dale", "port", "burg", "view")]  # fmt: skip
NICK = {
    "robert": "bob", "william": "bill", "elizabeth": "liz", "james": "jim", "michael": "mike",
    "richard": "rick", "thomas": "tom", "joseph": "joe", "margaret": "peggy", "katherine": "kate",
    "christopher": "chris", "jennifer": "jen", "daniel": "dan", "matthew": "matt", "anthony": "tony",
    "stephen": "steve", "samantha": "sam", "rebecca": "becky", "edward": "ed", "kenneth": "ken",
}  # fmt: skip


def _typo(values: pd.Series, rng: np.random.Generator) -> pd.Series:
    """One random edit (substitute, delete or transpose) in each non-empty value."""
    out = []
    for value in values:
        if not isinstance(value, str) or len(value) < 3:
            out.append(value)
            continue
        i = int(rng.integers(1, len(value) - 1))
        op = rng.integers(3)
        if op == 0:
            value = value[:i] + "aeiourst"[int(rng.integers(8))] + value[i + 1 :]
        elif op == 1:
            value = value[:i] + value[i + 1 :]
        else:
            value = value[: i - 1] + value[i] + value[i - 1] + value[i + 1 :]
        out.append(value)
    return pd.Series(out, index=values.index, dtype=object)


def generate(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Return (leads, entity id per lead); leads sharing an entity id are planted duplicates."""
    rng = np.random.default_rng(seed)
    people = int(n / 1.25)  # 20% of people get duplicates (one or two)
    rare = np.array(
        ["".join(rng.choice(SYLLABLES, size=k)) for k in rng.integers(2, 4, size=40_000)], dtype=object
    )
    common = np.array(COMMON_LAST, dtype=object)
    # Half of people share the 50 common surnames (Zipf-like), half have a rare one.
    common_weights = 1.0 / np.arange(1, len(common) + 1)
    common_weights /= common_weights.sum()
    last = np.where(
        rng.random(people) < 0.5,
        rng.choice(common, size=people, p=common_weights),
        rng.choice(rare, size=people),
    )
    first = rng.choice(np.array(FIRST, dtype=object), size=people)
    company_base = np.array(
        [" ".join(rng.choice(COMPANY_WORDS, size=2)).title() for _ in range(people // 4)], dtype=object
    )
    company = rng.choice(company_base, size=people) + " " + rng.choice(SUFFIXES, size=people)
    domain = pd.Series(company).str.lower().str.replace(r"[^a-z]", "", regex=True).str[:12] + ".com"
    email = pd.Series(first).str[0] + "." + pd.Series(last) + "@" + domain
    free = rng.random(people) < 0.3
    email = email.where(
        ~free, pd.Series(first) + pd.Series(last) + rng.integers(1, 99, people).astype(str) + "@gmail.com"
    )
    area = rng.integers(201, 989, size=people)
    number = rng.integers(2_000_000, 9_999_999, size=people)
    phone = pd.Series([f"({a}) {str(x)[:3]}-{str(x)[3:]}" for a, x in zip(area, number, strict=True)])
    street = (
        pd.Series(rng.integers(1, 9999, people).astype(str))
        + " "
        + pd.Series(rng.choice(STREETS, people)).str.title()
        + " "
        + pd.Series(rng.choice(STREET_TYPES, people))
    )
    city_index = rng.integers(0, len(CITIES), people)
    city = pd.Series(np.array(CITIES, dtype=object)[city_index]).str.title()
    postcode = pd.Series((10000 + city_index * 997 + rng.integers(0, 40, people)).astype(str))
    base = pd.DataFrame(
        {
            "first_name": pd.Series(first).str.title(),
            "last_name": pd.Series(last).str.title(),
            "company": company,
            "email": email,
            "phone": phone,
            "mobile_phone": None,
            "street": street,
            "city": city,
            "postcode": postcode,
            "entity": np.arange(people),
        }
    )
    extra = n - people
    dup_of = rng.choice(people, size=extra)  # with replacement: some people get two duplicates
    dups = base.iloc[dup_of].reset_index(drop=True).copy()
    m = len(dups)

    def mask(p: float) -> np.ndarray:
        return rng.random(m) < p

    k = mask(0.3)
    dups.loc[k, "last_name"] = _typo(dups.loc[k, "last_name"], rng)
    k = mask(0.2)
    dups.loc[k, "first_name"] = _typo(dups.loc[k, "first_name"], rng)
    k = mask(0.15)
    nick = dups["first_name"].str.lower().map(NICK)
    dups.loc[k & nick.notna().to_numpy(), "first_name"] = nick[k & nick.notna().to_numpy()].str.title()
    k = mask(0.05)
    dups.loc[k, ["first_name", "last_name"]] = dups.loc[k, ["last_name", "first_name"]].to_numpy()
    k = mask(0.2)
    dups.loc[k, "email"] = dups.loc[k, "email"].str.replace("@", "+crm@", regex=False).str.upper()
    k = mask(0.25)
    dups.loc[k, "email"] = None
    k = mask(0.3)
    dups.loc[k, "phone"] = "+1 " + dups.loc[k, "phone"].str.replace(r"[()]", "", regex=True)
    k = mask(0.2)
    dups.loc[k, "phone"] = None
    k = mask(0.3)
    dups.loc[k, "company"] = dups.loc[k, "company"].str.replace(
        r"\s+(Inc\.?|LLC|Ltd\.?|GmbH|SA|Corp|Co\.)$", "", regex=True
    )
    k = mask(0.2)
    dups.loc[k, "street"] = _typo(dups.loc[k, "street"], rng)
    k = mask(0.15)
    dups.loc[k, "street"] = None
    leads = (
        pd.concat([base, dups], ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    )
    leads.insert(0, "lead_id", [f"L{i:07d}" for i in range(len(leads))])
    entity = leads.pop("entity")
    return leads, entity


def sandbox_leads(records: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Leads from B1's sandbox seed (``medium`` is 50,000 leads; scaled), mapped to canonical columns.

    Returns (leads, entity id per lead): the seed's planted duplicate clusters, singletons numbered
    apart.
    """
    from connector.sandbox.seed import generate as seed_generate
    from jobs.service.mapping import load_table_mapping

    data = seed_generate("medium", seed, scale=records / 50_000)
    raw = data.tables["lead"]
    mapping = load_table_mapping(ROOT / "mappings" / "lead.toml")
    leads = pd.DataFrame({"lead_id": raw["leadid"]})
    for name, field in mapping.fields.items():
        if field.type in ("string", "datetime") and field.column in raw.columns:
            leads[name] = raw[field.column]
    truth = data.ground_truth["duplicates"]
    truth = truth[truth["table"] == "lead"].set_index("record_id")["cluster_id"]
    entity = leads["lead_id"].map(truth)
    singles = entity.isna()
    entity[singles] = -1 - np.arange(int(singles.sum()))
    return leads, entity.astype(np.int64)


def synthetic_leads(records: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Leads from this file's own generator (no colleagues sharing a company's phone and address)."""
    leads, entity = generate(records, seed)
    stamps = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(
        np.arange(len(leads)) % 86_400, unit="min"
    )
    return leads.assign(modified_on=stamps), entity


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--source",
        choices=["sandbox", "synthetic"],
        default="sandbox",
        help="sandbox: B1's seed generator (default; colleagues share company, phone and address); "
        "synthetic: this file's generator",
    )
    parser.add_argument("--_generate", help=argparse.SUPPRESS)  # child process: write data and exit
    args = parser.parse_args()

    make = sandbox_leads if args.source == "sandbox" else synthetic_leads
    if args._generate:
        leads, entity = make(args.records, args.seed)
        leads.assign(_entity=entity.to_numpy()).to_pickle(args._generate)
        return 0
    # Generate in a child process so the peak memory printed below is the job's, not the generator's.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "leads.pkl"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--records", str(args.records), "--seed", str(args.seed),
             "--source", args.source, "--_generate", str(path)],
            check=True,
        )  # fmt: skip
        generated = time.perf_counter() - started
        leads = pd.read_pickle(path)
    entity = leads.pop("_entity")
    config = load_duplicate_config(ROOT / "mappings" / "duplicates.toml", "lead")
    fields = {c: s for c, s in config.fields.items() if c in leads.columns}
    kwargs = {**config.find_kwargs(), "fields": fields}
    print(
        f"{len(leads)} leads ({args.source}, generated in {generated:.0f} s), "
        f"{int(entity.duplicated(keep=False).sum())} in planted duplicate groups"
    )
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    cpu_start = time.process_time()
    start = time.perf_counter()
    result = find_duplicates(leads, report=True, **kwargs)
    middle = time.perf_counter()
    groups = cluster(result.pairs, records=leads, **config.cluster_kwargs())
    end = time.perf_counter()
    cpu = time.process_time() - cpu_start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    by_id = dict(zip(leads["lead_id"], entity, strict=True))
    pairs = result.pairs
    same = np.array([by_id[a] == by_id[b] for a, b in zip(pairs["id_left"], pairs["id_right"], strict=True)])
    sizes = entity.value_counts()
    true_pairs = int((sizes * (sizes - 1) // 2).sum())
    precision = same.mean() if len(same) else 0.0
    recall = same.sum() / true_pairs
    model = result.model
    print(result.blocking.summary())
    others = ", ".join(
        f"{name} {share:.4f}"
        for name, share in zip(model.alternative_classes, model.alternative_shares, strict=True)
    )
    print(
        f"model: {model.source}, {model.iterations} EM iterations, match share {model.prior:.4f}, "
        f"unrelated {model.unrelated_share:.4f}, {others}"
    )
    print(
        f"pairs: {len(pairs)}  precision {precision:.4f}  recall {recall:.4f}  (planted pairs {true_pairs})"
    )
    print(f"groups: {groups['cluster_id'].nunique()} with {len(groups)} records")
    print(
        f"find_duplicates: {middle - start:.1f} s   cluster: {end - middle:.1f} s   "
        f"total: {end - start:.1f} s wall, {cpu:.1f} s CPU (the machine is shared: wall > CPU means waiting)"
    )
    print(
        f"peak memory: max RSS {rss:.0f} MiB (whole process; {baseline:.0f} MiB before the job, data loaded)"
    )
    print("targets: < 60 s, < 2048 MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
