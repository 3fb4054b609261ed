"""Vocabularies for the sandbox seed data: names, companies, places, phone plans, job titles.

Everything here is plain data. Names are weighted so that a few are common (Smith, Müller, García)
and many are rare, as in real populations: that is what makes look-alike *non*-duplicates appear
naturally, so a duplicate detector's precision can be measured and not only its recall.

Phone numbers follow each country's national numbering plan shape (area code, subscriber length,
trunk prefix, the way people write them), so ``phonenumbers`` parses and validates them; they are
random within valid ranges and are not meant to reach anyone.
"""

from __future__ import annotations


def _words(text: str, sep: str | None = None) -> list[str]:
    return text.split(sep)


# --- People ---------------------------------------------------------------------------------------

# Locale of names used per country. Listed roughly from most to least common: the generator draws
# them with Zipf-like weights, so the first entries are the Smiths and Müllers of the data.
NAME_LOCALE = {
    "United States": "en",
    "United Kingdom": "en",
    "Ireland": "en",
    "Australia": "en",
    "Canada": "en",
    "Germany": "de",
    "France": "fr",
    "Netherlands": "nl",
    "Spain": "es",
}

FIRST_NAMES = {
    "en": _words(
        "James Robert John Michael William David Richard Joseph Thomas Christopher Charles Daniel "
        "Matthew Anthony Andrew Mark Steven Paul Joshua Kenneth Kevin Brian George Edward Ronald "
        "Timothy Jason Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott "
        "Benjamin Samuel Gregory Alexander Patrick Frank Raymond Jack Dennis Jerry Tyler Aaron Oliver "
        "Harry Liam Noah Ethan Owen Callum Declan Seamus Aidan Rhys "
        "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty "
        "Margaret Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah "
        "Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy Angela Shirley Anna Brenda Pamela Emma "
        "Nicole Helen Samantha Katherine Christine Debra Rachel Catherine Carolyn Janet Ruth Maria "
        "Heather Diane Virginia Julie Joyce Victoria Olivia Kelly Christina Lauren Joan Evelyn Judith "
        "Megan Cheryl Andrea Hannah Martha Jacqueline Frances Gloria Ann Teresa Kathryn Sara Janice "
        "Jean Alice Madison Doris Abigail Julia Judy Grace Denise Amber Marilyn Beverly Danielle "
        "Theresa Sophie Chloe Siobhan Aoife Niamh Charlotte Isla Zoe"
    ),
    "de": _words(
        "Thomas Michael Andreas Stefan Peter Christian Klaus Wolfgang Jürgen Frank Markus Martin "
        "Matthias Alexander Sebastian Tobias Jan Uwe Jörg Florian Dieter Bernd Lukas Maximilian Felix "
        "Jonas Leon Paul Johannes Günter Horst Manfred Ralf Sven Dirk Björn Jens Kai "
        "Sabine Susanne Petra Andrea Claudia Monika Birgit Stefanie Julia Katharina Anna Nicole Ursula "
        "Christina Sandra Melanie Tanja Anja Heike Karin Gabriele Renate Lena Laura Lea Sophie Hannah "
        "Jana Katrin Sarah Miriam Jutta Annette Bärbel Jessica Lisa Marie"
    ),
    "fr": _words(
        "Jean Pierre Michel Philippe Alain Nicolas Christophe Patrick Daniel Stéphane Laurent "
        "Frédéric David Éric Olivier Sébastien Julien Thierry Pascal François Jérôme Thomas Antoine "
        "Maxime Hugo Lucas Mathieu Guillaume Benoît Cédric Rémi Grégoire Xavier Yves "
        "Marie Nathalie Isabelle Sylvie Catherine Françoise Valérie Sandrine Christine Véronique "
        "Sophie Céline Stéphanie Aurélie Julie Camille Émilie Hélène Claire Élodie Manon Chloé Léa "
        "Inès Margaux Mathilde Agnès Brigitte Delphine Geneviève Anaïs"
    ),
    "nl": _words(
        "Jan Johannes Pieter Cornelis Hendrik Willem Gerrit Dirk Daan Sem Lucas Bram Thijs Jeroen "
        "Sander Bas Ruben Joost Maarten Niels Koen Wouter Stijn Tim Martijn Erik Henk Kees "
        "Maria Anna Johanna Emma Sophie Julia Anouk Lotte Sanne Fleur Eva Lisa Femke Inge Marieke "
        "Esther Linda Ingrid Mirjam Saskia Anke Ilse Noor Tess"
    ),
    "es": _words(
        "José Antonio Manuel Francisco David Juan Javier Daniel Carlos Jesús Alejandro Miguel Rafael "
        "Pablo Sergio Fernando Jorge Luis Alberto Álvaro Adrián Diego Raúl Iván Rubén Óscar Andrés "
        "María Carmen Ana Isabel Laura Dolores Pilar Lucía Cristina Marta Elena Sara Paula Raquel "
        "Rosa Beatriz Silvia Patricia Nuria Irene Andrea Sofía Inés Mónica Alicia Verónica Ángela"
    ),
}

LAST_NAMES = {
    "en": _words(
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin "
        "Jackson Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Green "
        "Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Parker Collins "
        "Edwards Stewart Morris Murphy Cook Rogers Morgan Cooper Peterson Reed Bailey Bell Kelly Howard "
        "Ward Cox Richardson Wood Watson Brooks Bennett Gray Hughes Price Sanders Myers Long Ross "
        "Foster Powell Jenkins Perry Russell Sullivan Fisher Henderson Coleman Simmons Patterson Jordan "
        "Reynolds Hamilton Graham Wallace Cole West Stone Hayes Murray Ford Marshall Owens Harrison "
        "Gibson Ellis Fraser Kennedy Wells Hunt Palmer Holmes Mills Rose Lawrence Barnes Fletcher "
        "Chapman Knight Dixon Webb O'Brien O'Connor O'Neill Byrne Ryan Walsh McCarthy Doyle Gallagher "
        "MacDonald McKenzie Nguyen Patel Singh Khan Chen Wang Li Kim Tran Ahmed Ali Shah Okafor "
        "Abernathy Blackwood Cartwright Delacroix Ellsworth Fairbanks Greenhalgh Hollingsworth "
        "Ingram Jessup Kingsley Lockhart Merriweather Northcott Ormsby Pemberton Quayle Radcliffe "
        "Sinclair Thistlewood Underhill Vickery Whitcombe Yardley"
    ),
    "de": _words(
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch "
        "Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann "
        "Lange Schmitt Werner Schmitz Krause Meier Lehmann Schmid Schulze Maier Köhler Herrmann König "
        "Walter Mayer Huber Kaiser Fuchs Peters Lang Scholz Möller Weiß Jung Hahn Schubert Vogel "
        "Friedrich Keller Günther Frank Berger Winkler Roth Beck Lorenz Baumann Franke Albrecht "
        "Schuster Simon Ludwig Böhm Winter Kraus Martin Schumacher Krämer Vogt Stein Jäger Otto Sommer "
        "Groß Seidel Heinrich Brandt Haas Schreiber Graf Dietrich Ziegler Kuhn Kühn Pohl Engel Horn "
        "Bergmann Voigt Thiele Brückner Oberländer Wendlandt Eichhorn Rößler"
    ),
    "fr": _words(
        "Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel Lefèvre "
        "Leroy Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine Rousseau "
        "Vincent Müller Lefebvre Faure André Mercier Blanc Guérin Boyer Garnier Chevalier François "
        "Legrand Gauthier Garcia Perrin Robin Clément Morin Nicolas Henry Roussel Mathieu Gautier "
        "Masson Marchand Duval Denis Dumont Marie Lemaire Noël Meyer Dufour Meunier Brun Blanchard "
        "Giraud Joly Rivière Lucas Brunet Gaillard Barbier Arnaud Martínez Gérard Roche Renard Schmitt "
        "Roy Leroux Colin Vidal Caron Picard Roger Fabre Aubert Lemoine Renaud Dumas Lacroix Olivier "
        "Philippe Bourgeois Pierre Benoît Rey Leclerc Payet Rolland Leclercq Guillaume Lecomte Lopez "
        "Jean Dupuy Guillot Hubert Berger Carpentier Sánchez Dupuis Moulin Louis Deschamps Huet Vasseur"
    ),
    "es": _words(
        "García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez Martín Jiménez Ruiz "
        "Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez Vázquez "
        "Ramos Gil Ramírez Serrano Blanco Molina Morales Suárez Ortega Delgado Castro Ortiz Rubio "
        "Marín Sanz Núñez Iglesias Medina Garrido Cortés Castillo Santos Lozano Guerrero Cano Prieto "
        "Méndez Cruz Calvo Gallego Vidal León Márquez Herrera Peña Flores Cabrera Campos Vega Fuentes"
    ),
}
# Dutch surnames keep their particles (van, de), so they are listed one by one.
LAST_NAMES["nl"] = [
    "de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit",
    "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen",
    "Dekker", "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer", "van der Linden",
    "Kok", "Jacobs", "de Haan", "Vermeulen", "van den Heuvel", "van der Veen", "van den Broek",
    "de Bruijn", "de Bruin", "van der Heijden", "Schouten", "van Beek", "Willems", "van Vliet",
    "van de Ven", "Hoekstra", "Maas", "Verhoeven", "Koster", "van Dam", "van der Wal", "Prins", "Blom",
    "Huisman", "Peeters", "de Jonge",
]  # fmt: skip

# Common nickname -> formal name pairs (both directions are planted by the duplicate generator).
NICKNAMES = {
    "Robert": ["Bob", "Rob", "Bobby"],
    "William": ["Bill", "Will", "Billy"],
    "Elizabeth": ["Liz", "Beth", "Lizzie"],
    "Margaret": ["Maggie", "Peggy", "Meg"],
    "Katherine": ["Kate", "Kathy", "Katie"],
    "Catherine": ["Cathy", "Kate"],
    "James": ["Jim", "Jimmy", "Jamie"],
    "Richard": ["Rick", "Dick", "Rich"],
    "Michael": ["Mike", "Mick"],
    "Thomas": ["Tom", "Tommy"],
    "Christopher": ["Chris"],
    "Daniel": ["Dan", "Danny"],
    "Matthew": ["Matt"],
    "Anthony": ["Tony"],
    "Joseph": ["Joe", "Joey"],
    "Jennifer": ["Jen", "Jenny"],
    "Patricia": ["Pat", "Patty", "Trish"],
    "Susan": ["Sue", "Susie"],
    "Deborah": ["Debbie", "Deb"],
    "Alexander": ["Alex"],
    "Edward": ["Ed", "Ted", "Eddie"],
    "Andrew": ["Andy", "Drew"],
    "Nicholas": ["Nick"],
    "Jonathan": ["Jon"],
    "Steven": ["Steve"],
    "Stephen": ["Steve"],
    "Benjamin": ["Ben"],
    "Samuel": ["Sam"],
    "Gregory": ["Greg"],
    "Timothy": ["Tim"],
    "Kenneth": ["Ken"],
    "Rebecca": ["Becky"],
    "Kimberly": ["Kim"],
    "Victoria": ["Vicky"],
    "Samantha": ["Sam"],
    "Christina": ["Tina"],
    "Pamela": ["Pam"],
    "Judith": ["Judy"],
    "Johannes": ["Hannes", "Hans"],
    "Katharina": ["Kathi", "Katja"],
    "Maximilian": ["Max"],
    "Sebastian": ["Basti"],
    "Alejandro": ["Álex"],
    "Francisco": ["Paco", "Fran"],
    "José": ["Pepe"],
    "Manuel": ["Manolo"],
    "Dolores": ["Lola"],
    "Pieter": ["Piet"],
    "Cornelis": ["Kees"],
    "Willem": ["Wim"],
}

# --- Companies ------------------------------------------------------------------------------------

COMPANY_ADJECTIVES = _words(
    "Blue Red Green Silver Golden Northern Southern Eastern Western Pacific Atlantic Summit Pioneer "
    "Liberty Heritage Sterling Crystal Bright Swift Prime Global United Royal Grand Central Coastal "
    "Alpine Nordic Urban Rapid Smart Clear True Bold First Premier Advanced Integrated Dynamic "
    "Strategic Precision Reliable Modern Classic Evergreen Redwood Granite Cedar Oak Maple Iron Copper "
    "Quantum Vertex Apex Zenith Horizon Meridian Orion Polaris Vector Nexus Titan Falcon Eagle Lion "
    "Harbor Bridge River Lake Valley Mountain Forest Ocean Sky Star Sun Moon Crown Shield"
)
COMPANY_NOUNS = _words(
    "Data Cloud Software Systems Networks Solutions Logic Works Labs Digital Analytics Energy Power "
    "Water Health Care Medical Pharma Bio Foods Farms Foods Brewing Textiles Metals Plastics Paper "
    "Packaging Print Media Design Studio Marketing Advisory Capital Finance Insurance Assurance "
    "Legal Realty Property Construction Builders Engineering Robotics Motion Machines Tools Parts "
    "Components Electronics Devices Instruments Optics Sensors Chemicals Materials Freight Cargo "
    "Shipping Transport Logistics Mobility Auto Motors Travel Hospitality Retail Trading Supply "
    "Distribution Wholesale Imports Exports Consulting Partners Associates Group Holdings Ventures "
    "Resources Services Outsourcing Staffing Learning Education Training Security Telecom Signal"
)
COMPANY_NOUNS = list(dict.fromkeys(COMPANY_NOUNS))
COMPANY_SECTORS = _words(
    "Group Partners Industries International Technologies Enterprises Systems Solutions Services "
    "Holdings Company Corporation Works Associates Consulting Labs Global Network Collective"
)

# Legal-form suffixes per country, most common first.
COMPANY_SUFFIXES = {
    "United States": ["Inc", "LLC", "Corp", "Inc.", "Co"],
    "Canada": ["Inc", "Ltd", "Corp", "Ltée"],
    "United Kingdom": ["Ltd", "PLC", "Limited", "LLP"],
    "Ireland": ["Ltd", "DAC", "Limited", "PLC"],
    "Australia": ["Pty Ltd", "Ltd", "Pty. Ltd."],
    "Germany": ["GmbH", "AG", "GmbH & Co. KG", "KG", "UG"],
    "France": ["SA", "SAS", "S.A.R.L", "SARL", "SNC"],
    "Netherlands": ["BV", "B.V.", "NV", "N.V."],
    "Spain": ["S.L.", "S.A.", "SL", "SA", "S.L.U."],
}
# How one suffix is also written (the duplicate generator swaps between them).
SUFFIX_VARIANTS = {
    "Inc": ["Inc.", "Incorporated", ""],
    "Inc.": ["Inc", "Incorporated", ""],
    "LLC": ["L.L.C.", "Llc", ""],
    "Corp": ["Corp.", "Corporation", ""],
    "Co": ["Co.", "Company", ""],
    "Ltd": ["Ltd.", "Limited", ""],
    "Limited": ["Ltd", "Ltd.", ""],
    "PLC": ["plc", "Plc", ""],
    "LLP": ["L.L.P.", ""],
    "DAC": ["D.A.C.", ""],
    "Ltée": ["Ltee", ""],
    "Pty Ltd": ["Pty. Ltd.", "Pty Limited", "Proprietary Limited", ""],
    "Pty. Ltd.": ["Pty Ltd", ""],
    "GmbH": ["Gmbh", "G.m.b.H.", ""],
    "AG": ["A.G.", ""],
    "GmbH & Co. KG": ["GmbH & Co KG", "GmbH u. Co. KG", ""],
    "KG": ["K.G.", ""],
    "UG": ["UG (haftungsbeschränkt)", ""],
    "SA": ["S.A.", ""],
    "SAS": ["S.A.S.", ""],
    "S.A.R.L": ["SARL", "S.A.R.L.", "Sarl", ""],
    "SARL": ["S.A.R.L", "S.à r.l.", ""],
    "SNC": ["S.N.C.", ""],
    "BV": ["B.V.", "Bv", ""],
    "B.V.": ["BV", ""],
    "NV": ["N.V.", ""],
    "N.V.": ["NV", ""],
    "S.L.": ["SL", "S.L", ""],
    "S.A.": ["SA", "S.A", ""],
    "SL": ["S.L.", ""],
    "S.L.U.": ["SLU", ""],
}

PERSONAL_EMAIL_DOMAINS = {
    "United States": ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com"],
    "Canada": ["gmail.com", "yahoo.ca", "outlook.com", "hotmail.com"],
    "United Kingdom": ["gmail.com", "hotmail.co.uk", "yahoo.co.uk", "btinternet.com", "outlook.com"],
    "Ireland": ["gmail.com", "eircom.net", "hotmail.com", "outlook.com"],
    "Australia": ["gmail.com", "bigpond.com", "outlook.com", "hotmail.com"],
    "Germany": ["gmail.com", "gmx.de", "web.de", "t-online.de", "outlook.de"],
    "France": ["gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr"],
    "Netherlands": ["gmail.com", "ziggo.nl", "kpnmail.nl", "hotmail.nl", "outlook.com"],
    "Spain": ["gmail.com", "hotmail.es", "yahoo.es", "outlook.es", "telefonica.net"],
}

# --- Places ---------------------------------------------------------------------------------------

# Per country: weight, web TLD, international dialling code, trunk prefix, cities.
# Each city: (name, state/province, area code, subscriber length, leading subscriber digits, postcode
# spec). Postcode specs are formats where "9" is a random digit, "A" a random letter and literal
# text is kept; several specs per city spread postcodes over its districts.
COUNTRIES = {
    "United States": {
        "weight": 0.34,
        "tld": "com",
        "cc": "1",
        "trunk": "",
        "cities": [
            ("New York", "NY", "212", 7, "2345678", ["100##", "101##"]),
            ("Chicago", "IL", "312", 7, "2345678", ["606##"]),
            ("San Francisco", "CA", "415", 7, "2345678", ["941##"]),
            ("Austin", "TX", "512", 7, "2345678", ["787##"]),
            ("Boston", "MA", "617", 7, "2345678", ["021##"]),
            ("Seattle", "WA", "206", 7, "2345678", ["981##"]),
            ("Atlanta", "GA", "404", 7, "2345678", ["303##"]),
            ("Denver", "CO", "303", 7, "2345678", ["802##"]),
        ],
    },
    "United Kingdom": {
        "weight": 0.16,
        "tld": "co.uk",
        "cc": "44",
        "trunk": "0",
        "cities": [
            ("London", "", "20", 8, "378", ["EC1A #@@", "SW1A #@@", "N1 #@@", "E14 #@@", "W1D #@@"]),
            ("Manchester", "", "161", 7, "2345789", ["M1 #@@", "M4 #@@", "M15 #@@"]),
            ("Birmingham", "", "121", 7, "2345789", ["B1 #@@", "B5 #@@"]),
            ("Leeds", "", "113", 7, "2345789", ["LS1 #@@", "LS2 #@@"]),
            ("Bristol", "", "117", 7, "2345789", ["BS1 #@@", "BS8 #@@"]),
        ],
    },
    "Germany": {
        "weight": 0.14,
        "tld": "de",
        "cc": "49",
        "trunk": "0",
        "cities": [
            ("Berlin", "Berlin", "30", 8, "2345678", ["10###", "12###"]),
            ("München", "Bayern", "89", 8, "2345678", ["80###", "81###"]),
            ("Hamburg", "Hamburg", "40", 8, "2345678", ["20###", "22###"]),
            ("Köln", "Nordrhein-Westfalen", "221", 7, "2345678", ["50###"]),
            ("Frankfurt am Main", "Hessen", "69", 8, "2345678", ["60###"]),
        ],
    },
    "France": {
        "weight": 0.09,
        "tld": "fr",
        "cc": "33",
        "trunk": "0",
        "cities": [
            ("Paris", "Île-de-France", "1", 8, "23456789", ["750##"]),
            ("Lyon", "Auvergne-Rhône-Alpes", "4", 8, "7", ["6900#"]),
            ("Marseille", "Provence-Alpes-Côte d'Azur", "4", 8, "9", ["130##"]),
            ("Toulouse", "Occitanie", "5", 8, "6", ["310##"]),
            ("Nantes", "Pays de la Loire", "2", 8, "4", ["440##"]),
        ],
    },
    "Netherlands": {
        "weight": 0.07,
        "tld": "nl",
        "cc": "31",
        "trunk": "0",
        "cities": [
            ("Amsterdam", "Noord-Holland", "20", 7, "2345678", ["10## @@"]),
            ("Rotterdam", "Zuid-Holland", "10", 7, "2345678", ["30## @@"]),
            ("Utrecht", "Utrecht", "30", 7, "2345678", ["35## @@"]),
            ("Eindhoven", "Noord-Brabant", "40", 7, "2345678", ["56## @@"]),
        ],
    },
    "Australia": {
        "weight": 0.07,
        "tld": "com.au",
        "cc": "61",
        "trunk": "0",
        "cities": [
            ("Sydney", "NSW", "2", 8, "89", ["20##"]),
            ("Melbourne", "VIC", "3", 8, "89", ["30##"]),
            ("Brisbane", "QLD", "7", 8, "3", ["40##"]),
            ("Perth", "WA", "8", 8, "9", ["60##"]),
        ],
    },
    "Canada": {
        "weight": 0.06,
        "tld": "ca",
        "cc": "1",
        "trunk": "",
        "cities": [
            ("Toronto", "ON", "416", 7, "2345678", ["M5V #@#", "M4W #@#"]),
            ("Vancouver", "BC", "604", 7, "2345678", ["V6B #@#", "V5K #@#"]),
            ("Montréal", "QC", "514", 7, "2345678", ["H2X #@#", "H3B #@#"]),
        ],
    },
    "Spain": {
        "weight": 0.04,
        "tld": "es",
        "cc": "34",
        "trunk": "",
        "cities": [
            ("Madrid", "Madrid", "91", 7, "2345678", ["280##"]),
            ("Barcelona", "Barcelona", "93", 7, "2345678", ["080##"]),
            ("Valencia", "Valencia", "96", 7, "2345678", ["460##"]),
        ],
    },
    "Ireland": {
        "weight": 0.03,
        "tld": "ie",
        "cc": "353",
        "trunk": "0",
        "cities": [
            ("Dublin", "Dublin", "1", 7, "2345678", ["D02 @#@#", "D04 @#@#", "D08 @#@#"]),
            ("Cork", "Cork", "21", 7, "234", ["T12 @#@#", "T23 @#@#"]),
            ("Galway", "Galway", "91", 6, "5", ["H91 @#@#"]),
        ],
    },
}

# Mobile number plans: (mobile prefix choices after the country code, subscriber length).
MOBILE_PLANS = {
    "United States": None,  # US/CA mobiles look like landlines: reuse the city area code
    "Canada": None,
    "United Kingdom": (["7700", "7911", "7811", "7400"], 6),
    "Germany": (["151", "160", "170", "171", "172", "176"], 8),
    "France": (["6", "7"], 8),
    "Netherlands": (["6"], 8),
    "Australia": (["4"], 8),
    "Spain": (["6"], 8),
    "Ireland": (["83", "85", "86", "87"], 7),
}

STREET_NAMES = {
    "en": _words(
        "Main Oak Maple Cedar Pine Elm Washington Park Lake Hill Church High Station Victoria "
        "King Queen Market Mill Bridge River Spring Chestnut Walnut Highland Riverside Sunset Union"
    ),
    "de": _words(
        "Haupt Bahnhof Schul Garten Berg Kirch Wald Ring Linden Birken Mühlen Goethe Schiller Rosen "
        "Markt Dorf Feld Post Wiesen"
    ),
    "fr": _words(
        "de la République|Victor Hugo|de la Paix|du Général de Gaulle|Pasteur|Jean Jaurès|de l'Église|"
        "du Moulin|des Écoles|Voltaire|de la Gare|Gambetta|du Château|Saint-Honoré",
        "|",
    ),
    "nl": _words("Kerk Dorps Molen School Stations Heren Keizers Prinsen Bloem Linden Beuken Eiken"),
    "es": _words(
        "Mayor|de Alcalá|Gran Vía|de la Constitución|del Sol|de Goya|de Serrano|Real|Nueva|del Carmen", "|"
    ),
}
STREET_TYPES_EN = ["Street", "Avenue", "Road", "Lane", "Drive", "Way", "Boulevard", "Court"]

# --- Jobs -----------------------------------------------------------------------------------------

# Job titles by seniority band; the band drives qualification odds (see leads.py).
JOB_TITLES = {
    "c_level": [
        "CEO", "Chief Executive Officer", "CFO", "Chief Financial Officer", "CTO", "CIO",
        "Chief Operating Officer", "Managing Director", "Founder", "Owner", "Geschäftsführer",
        "Directeur Général",
    ],
    "vp": [
        "VP Sales", "Vice President of Sales", "VP Marketing", "VP Operations", "VP Engineering",
        "Vice President, Finance", "SVP Business Development",
    ],
    "director": [
        "Director of IT", "Sales Director", "Marketing Director", "Head of Procurement",
        "Head of Operations", "Finance Director", "Director of Customer Success", "Head of IT",
    ],
    "manager": [
        "IT Manager", "Sales Manager", "Marketing Manager", "Procurement Manager", "Office Manager",
        "Operations Manager", "Project Manager", "Product Manager", "Account Manager",
    ],
    "individual": [
        "Analyst", "Engineer", "Consultant", "Sales Representative", "Accountant", "Developer",
        "Specialist", "Coordinator", "Administrator", "Buyer",
    ],
    "student": ["Student", "Intern", "Trainee", "Working Student"],
}  # fmt: skip
SENIORITY_WEIGHTS = {
    "c_level": 0.10,
    "vp": 0.07,
    "director": 0.15,
    "manager": 0.28,
    "individual": 0.34,
    "student": 0.06,
}

# --- Products, subjects ---------------------------------------------------------------------------

PRODUCTS = [
    ("Platform licence - Standard (annual)", 1200.0),
    ("Platform licence - Professional (annual)", 2400.0),
    ("Platform licence - Enterprise (annual)", 6000.0),
    ("Additional user seat", 180.0),
    ("Premium support plan", 950.0),
    ("Onboarding package", 1500.0),
    ("Consulting day", 1100.0),
    ("Training workshop (half day)", 650.0),
    ("Data migration service", 2800.0),
    ("Integration connector", 800.0),
    ("Hardware gateway", 420.0),
    ("Sensor kit", 150.0),
    ("Replacement part", 45.0),
    ("Extended warranty", 220.0),
    ("Shipping and handling", 35.0),
]

LEAD_TOPICS = [
    "Pricing request",
    "Product demo",
    "Interested in Enterprise plan",
    "Trial follow-up",
    "Request for proposal",
    "Partnership enquiry",
    "Webinar attendee",
    "Whitepaper download",
    "Trade show visit",
    "Referral from customer",
    "Support for existing installation",
    "Integration question",
]

EMAIL_SUBJECTS_OUT = [
    "Following up on your enquiry",
    "Thanks for your interest",
    "Your requested information",
    "Quick question",
    "Proposal attached",
    "Next steps",
    "Checking in",
]
EMAIL_SUBJECTS_IN = [
    "RE: Following up on your enquiry",
    "RE: Proposal attached",
    "Question about pricing",
    "RE: Next steps",
    "Can we schedule a call?",
    "More details please",
]
CALL_SUBJECTS = ["Discovery call", "Follow-up call", "Qualification call", "Returned call", "Intro call"]
APPOINTMENT_SUBJECTS = ["Product demo", "On-site meeting", "Technical deep dive", "Proposal review"]
