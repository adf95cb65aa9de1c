#!/usr/bin/env python3
"""Generate data/nanp/npa_regions.txt: NANP area code (NPA) -> US state / Canadian province.

Source: the geocoder data of the PyPI `phonenumbers` package (the Python port of Google's
libphonenumber, Apache-2.0). The version is pinned so the output is reproducible:

    python3 -m venv /tmp/npavenv
    /tmp/npavenv/bin/pip install phonenumbers==9.0.43
    /tmp/npavenv/bin/python scripts/gen_npa_regions.py

How a region is derived for each NPA 200-999:
  1. US territories with their own NANP region (PR, VI, GU, AS, MP) take that region code, which
     is also their USPS code.
  2. Otherwise the geocoder's description of the 4-digit prefix `1NPA` is used when it names one
     state/province ("Idaho") or ends in one ("Chicago, IL").
  3. Otherwise (no 4-digit entry, or one naming several regions such as
     "Northwest Territories/Nunavut/Yukon") the longer prefixes `1NPA...` vote: each description
     that names one state/province counts once, and the most frequent wins (ties: alphabetical).
  NPAs that are not geographic (toll free, 5XX, 600), belong to another NANP country, or have no
  geocoder data are left out: `region_of` answers None for them.
The output is sorted by NPA; the script prints the NPAs where step 3 was used or where longer
prefixes disagree with the 4-digit entry, for review.
"""

import datetime
import os
import sys
from collections import Counter, defaultdict

import phonenumbers
from phonenumbers.geodata import GEOCODE_DATA

PINNED_VERSION = "9.0.43"

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington State": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Washington D.C.": "DC", "Washington, D.C.": "DC", "District of Columbia": "DC",
}
CA_PROVINCES = {
    "Alberta": "AB", "British Columbia": "BC", "British Colombia": "BC", "Manitoba": "MB",
    "New Brunswick": "NB", "Newfoundland and Labrador": "NL", "Nova Scotia": "NS",
    "Ontario": "ON", "Prince Edward Island": "PE", "Quebec": "QC", "Saskatchewan": "SK",
    "Northwest Territories": "NT", "Nunavut": "NU", "Yukon": "YT",
}
NAMES = {**US_STATES, **CA_PROVINCES}
CODES = set(NAMES.values())
US_TERRITORIES = {"PR", "VI", "GU", "AS", "MP"}


def region_in(description):
    """The one state/province code a geocoder description names, or None."""
    d = description.strip()
    if d in NAMES:
        return NAMES[d]
    if ", " in d:
        suffix = d.rsplit(", ", 1)[1].strip()
        if suffix in CODES:
            return suffix
        if suffix in NAMES:
            return NAMES[suffix]
    return None


def nanp_region_of_npa(npa):
    """phonenumbers' region (US, CA, PR, BS, ...) for numbers in this NPA, by leading digits."""
    for rest in ("2345678", "5550100", "7654321"):
        num = phonenumbers.parse("+1" + npa + rest)
        region = phonenumbers.region_code_for_number(num)
        if region:
            return region
    return None


def main():
    if phonenumbers.__version__ != PINNED_VERSION:
        sys.exit(f"phonenumbers {phonenumbers.__version__} found, {PINNED_VERSION} pinned: "
                 f"pip install phonenumbers=={PINNED_VERSION}")
    descriptions = defaultdict(list)
    for prefix, names in GEOCODE_DATA.items():
        if prefix.startswith("1") and len(prefix) >= 5 and "en" in names:
            descriptions[prefix[1:4]].append(names["en"])

    rows, review = [], []
    for n in range(200, 1000):
        npa = str(n)
        nanp_region = nanp_region_of_npa(npa)
        if nanp_region in US_TERRITORIES:
            rows.append((npa, nanp_region))
            continue
        if nanp_region not in ("US", "CA"):
            continue
        four = GEOCODE_DATA.get("1" + npa, {}).get("en")
        votes = Counter(r for r in map(region_in, descriptions[npa]) if r)
        region = region_in(four) if four else None
        if region is None:
            if not votes:
                continue
            top = max(votes.values())
            region = sorted(r for r, c in votes.items() if c == top)[0]
            review.append(f"{npa}: 4-digit {four!r}, voted {region} from {dict(votes)}")
        elif votes and votes.most_common(1)[0][0] != region:
            review.append(f"{npa}: 4-digit {four!r} -> {region}, longer prefixes {dict(votes)}")
        expected = set(US_STATES.values()) if nanp_region == "US" else set(CA_PROVINCES.values())
        if region not in expected:
            sys.exit(f"{npa}: {region} is not a region of {nanp_region}")
        rows.append((npa, region))

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = os.path.join(root, "data", "nanp")
    os.makedirs(out_dir, exist_ok=True)
    today = datetime.date.today().isoformat()
    with open(os.path.join(out_dir, "npa_regions.txt"), "w") as f:
        f.write(f"# NANP area code (NPA) | US state, DC, US territory or Canadian province code.\n")
        f.write(f"# Generated by scripts/gen_npa_regions.py from phonenumbers {PINNED_VERSION} "
                f"geocoder data on {today}; see NOTICE.\n")
        for npa, region in rows:
            f.write(f"{npa}|{region}\n")
    with open(os.path.join(out_dir, "NOTICE"), "w") as f:
        f.write(
            "data/nanp/npa_regions.txt is derived from the geocoder data of the Python package\n"
            f"`phonenumbers` version {PINNED_VERSION} (PyPI), generated on {today} by\n"
            "scripts/gen_npa_regions.py.\n\n"
            "phonenumbers is a port of Google's libphonenumber.\n"
            "Copyright (C) 2011-2026 The Libphonenumber Authors\n"
            "Copyright (C) 2011-2026 David Drysdale (Python port)\n\n"
            "Licensed under the Apache License, Version 2.0 (the \"License\"); you may not use\n"
            "this file except in compliance with the License. You may obtain a copy of the\n"
            "License at http://www.apache.org/licenses/LICENSE-2.0\n\n"
            "Unless required by applicable law or agreed to in writing, software distributed\n"
            "under the License is distributed on an \"AS IS\" BASIS, WITHOUT WARRANTIES OR\n"
            "CONDITIONS OF ANY KIND, either express or implied. See the License for the\n"
            "specific language governing permissions and limitations under the License.\n\n"
            "Changes: the per-prefix place names were reduced to one two-letter state,\n"
            "district, territory or province code per three-digit area code (see the script's\n"
            "docstring for the rules).\n")
    print(f"{len(rows)} NPAs written", file=sys.stderr)
    for line in review:
        print("review:", line, file=sys.stderr)


if __name__ == "__main__":
    main()
