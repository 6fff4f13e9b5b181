"""Realistic synthetic postings for demos, tests and benchmarks (Albanian and English).

Categories with their own titles and skills, Albanian cities, experience levels, a mix
of statuses (some expired, deleted, closed, draft), duplicate postings, and some messy
text (emojis, control characters, HTML). A few postings are invalid on purpose.
Deterministic for a given seed.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from jobsim.jobs import EXPERIENCE_LEVELS

# category: (English titles, Albanian titles, skills)
CATEGORIES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "Information Technology": (
        ["Software Developer", "Backend Engineer", "Frontend Developer", "DevOps Engineer",
         "Data Analyst", "QA Tester", "System Administrator", "Mobile Developer"],
        ["Zhvillues Softueri", "Inxhinier Backend", "Zhvillues Frontend", "Analist të Dhënash",
         "Administrator Sistemi", "Testues Softueri"],
        ["Python", "Java", "JavaScript", "React", "SQL", "Docker", "Linux", "Git", "AWS", "Kubernetes",
         "TypeScript", "PostgreSQL", "REST API", "CI/CD"]),
    "Finance": (
        ["Accountant", "Financial Analyst", "Internal Auditor", "Bank Teller", "Payroll Specialist",
         "Credit Officer"],
        ["Kontabilist", "Analist Financiar", "Auditues i Brendshëm", "Arkëtar Banke",
         "Specialist Pagash", "Oficer Kredie"],
        ["Excel", "IFRS", "financial reporting", "budgeting", "audit", "tax law", "SAP", "reconciliation",
         "cash management"]),
    "Sales": (
        ["Sales Agent", "Account Manager", "Sales Representative", "Business Development Manager",
         "Retail Store Manager"],
        ["Agjent Shitjesh", "Menaxher Llogarish", "Përfaqësues Shitjesh", "Menaxher Dyqani"],
        ["negotiation", "CRM", "B2B sales", "customer relationships", "cold calling", "sales targets",
         "retail"]),
    "Marketing": (
        ["Digital Marketing Specialist", "Social Media Manager", "Content Writer", "SEO Specialist",
         "Brand Manager"],
        ["Specialist Marketingu Dixhital", "Menaxher Rrjetesh Sociale", "Shkrues Përmbajtjeje",
         "Menaxher Marke"],
        ["SEO", "Google Ads", "Facebook Ads", "copywriting", "Canva", "content strategy", "analytics",
         "email marketing"]),
    "Healthcare": (
        ["Nurse", "Pharmacist", "General Practitioner", "Dentist", "Physiotherapist", "Lab Technician"],
        ["Infermier", "Farmacist", "Mjek i Përgjithshëm", "Stomatolog", "Fizioterapist", "Laborant"],
        ["patient care", "first aid", "clinical procedures", "medical records", "pharmacology",
         "hospital"]),
    "Education": (
        ["English Teacher", "Mathematics Teacher", "Kindergarten Teacher", "University Lecturer",
         "Private Tutor"],
        ["Mësues Anglishteje", "Mësues Matematike", "Edukatore Kopshti", "Pedagog Universiteti"],
        ["lesson planning", "classroom management", "curriculum", "teaching", "child development",
         "assessment"]),
    "Hospitality": (
        ["Waiter", "Chef", "Hotel Receptionist", "Bartender", "Housekeeping Supervisor"],
        ["Kamarier", "Kuzhinier", "Recepsionist Hoteli", "Banakier", "Pastruese Hoteli"],
        ["customer service", "food safety", "cooking", "cocktails", "hotel booking systems", "tourism",
         "Italian language"]),
    "Construction": (
        ["Civil Engineer", "Electrician", "Architect", "Site Supervisor", "Plumber"],
        ["Inxhinier Ndërtimi", "Elektricist", "Arkitekt", "Përgjegjës Kantieri", "Hidraulik"],
        ["AutoCAD", "construction safety", "electrical installations", "project management",
         "building codes", "Revit"]),
    "Customer Service": (
        ["Call Center Agent", "Customer Support Specialist", "Help Desk Operator",
         "Italian Speaking Customer Care"],
        ["Operator Call Center", "Specialist Kujdesi ndaj Klientit", "Operator Ndihme"],
        ["Italian language", "English language", "communication", "complaint handling", "CRM",
         "telephone support"]),
    "Logistics": (
        ["Delivery Driver", "Warehouse Worker", "Logistics Coordinator", "Forklift Operator"],
        ["Shofer Shpërndarjeje", "Punëtor Magazine", "Koordinator Logjistike", "Operator Piruni"],
        ["driving license C", "inventory", "route planning", "forklift", "supply chain", "shipping"]),
}

CITIES: dict[str, str] = {
    "Tirana": "Tiranë", "Durrës": "Durrës", "Vlorë": "Vlorë", "Shkodër": "Shkodër",
    "Elbasan": "Elbasan", "Korçë": "Korçë", "Fier": "Fier", "Berat": "Berat",
    "Sarandë": "Vlorë", "Gjirokastër": "Gjirokastër", "Kukës": "Kukës", "Lushnjë": "Fier",
}
CITY_WEIGHTS = [30, 12, 8, 7, 6, 6, 5, 4, 4, 3, 2, 3]
COMPANIES = ["Albtelecom", "Raiffeisen Bank", "Vodafone Albania", "Balfin Group", "Credins Bank",
             "Spar Albania", "Teleperformance", "Kastrati Group", "ABC Health", "Lufthansa Industry "
             "Solutions", "Hotel Rogner", "Ernst & Young", "Neptun", "Agna Group"]

EN_INTRO = ["{company} is looking for a motivated {title} to join our team in {city}.",
            "We are hiring a {title} for our office in {city} ({company}).",
            "Join {company} as a {title} and grow your career with us."]
EN_BODY = ["You will work with {s1} and {s2} every day.",
           "Responsibilities include tasks related to {s1}, {s2} and {s3}.",
           "The ideal candidate has solid experience with {s1} and is comfortable with {s2}.",
           "You will collaborate with colleagues across departments and report to the team lead.",
           "We offer a competitive salary, health insurance and paid training.",
           "Knowledge of {s3} is considered an advantage.",
           "Good communication skills and a positive attitude are required.",
           "Working hours are Monday to Friday, with flexible start times."]
SQ_INTRO = ["{company} kërkon një {title} të motivuar për t'u bashkuar me ekipin tonë në {city}.",
            "Po punësojmë një {title} për zyrën tonë në {city} ({company}).",
            "Bashkohu me {company} si {title} dhe zhvillo karrierën tënde me ne."]
SQ_BODY = ["Do të punoni çdo ditë me {s1} dhe {s2}.",
           "Përgjegjësitë përfshijnë detyra që lidhen me {s1}, {s2} dhe {s3}.",
           "Kandidati ideal ka përvojë të mirë me {s1} dhe njohuri për {s2}.",
           "Do të bashkëpunoni me kolegët e departamenteve të tjera.",
           "Ofrojmë pagë konkurruese, sigurim shëndetësor dhe trajnime të paguara.",
           "Njohja e {s3} është avantazh.",
           "Kërkohen aftësi të mira komunikimi dhe qëndrim pozitiv.",
           "Orari i punës është e hënë deri të premte."]
JUNK = ["🚀🔥 Apply now!!! 💼", "\x07\x1b[31m", "<b>Urgent</b>", "✅✅✅", "\u200b\u200d"]


def _description(rng: random.Random, lang: str, title: str, company: str, city: str,
                 skills: list[str], target_chars: int) -> str:
    intro, body = (EN_INTRO, EN_BODY) if lang == "en" else (SQ_INTRO, SQ_BODY)
    sentences = [rng.choice(intro).format(title=title, company=company, city=city)]
    while sum(len(s) + 1 for s in sentences) < target_chars:
        s1, s2, s3 = rng.sample(skills, 3)
        sentences.append(rng.choice(body).format(s1=s1, s2=s2, s3=s3))
    return " ".join(sentences)


def _lifecycle(rng: random.Random, now: datetime) -> dict[str, Any]:
    """Created within 60 days; mostly active, some closed, draft, deleted or expired."""
    created = now - timedelta(days=rng.uniform(0, 60))
    status, deleted = "active", False
    roll = rng.random()
    expires = created + timedelta(days=rng.choice([30, 45, 60, 90]))
    if roll < 0.05:
        status = "closed"
    elif roll < 0.08:
        status = "draft"
    elif roll < 0.11:
        deleted = True
    elif roll < 0.15:
        expires = now - timedelta(days=rng.uniform(0.1, 10))
    elif expires <= now:
        expires = now + timedelta(days=rng.uniform(1, 30))
    return {"status": status, "isDeleted": deleted, "expiresAt": expires, "createdAt": created, "updatedAt": created}


def _posting(rng: random.Random, i: int, source: str, now: datetime) -> dict[str, Any]:
    category = rng.choice(list(CATEGORIES))
    en_titles, sq_titles, skills = CATEGORIES[category]
    lang = rng.choices(["en", "sq", "mixed"], [45, 45, 10])[0]
    title = rng.choice(en_titles if lang == "en" else sq_titles)
    level = rng.choice(EXPERIENCE_LEVELS[:5])
    if level in ("senior", "lead") and lang == "en":
        title = f"{level.capitalize()} {title}"
    city = rng.choices(list(CITIES), CITY_WEIGHTS)[0]
    company = rng.choice(COMPANIES)
    target = int(rng.lognormvariate(6.9, 0.5))  # median ~1,000 characters
    description = _description(rng, "en" if lang == "en" else "sq", title, company, city, skills, min(target, 6000))
    if lang == "mixed":
        description += " " + _description(rng, "en", title, company, city, skills, 300)
    if rng.random() < 0.05:
        description = rng.choice(JUNK) + " " + description + " " + rng.choice(JUNK)
    if rng.random() < 0.02:  # invalid on purpose: too short to describe a job
        description = rng.choice(["TBD", "Call us", "..."])
    remote = rng.random() < 0.12
    low = rng.randrange(300, 1500, 50) * 1000
    return {
        "source": source, "externalId": f"{source}-{i:07d}", "title": title, "description": description,
        "company": company, "category": category,
        "tags": rng.sample(skills, min(len(skills), rng.randint(2, 5))),
        "requirements": [f"{rng.randint(0, 8)}+ years of experience"] if lang == "en"
        else [f"Përvojë pune {rng.randint(0, 8)}+ vjet"],
        "location": {"city": city, "region": CITIES[city], "remote": remote,
                     "hybrid": not remote and rng.random() < 0.15},
        "experienceLevel": level,
        "salary": {"min": low, "max": low + rng.randrange(50, 800, 50) * 1000, "currency": "ALL"},
        **_lifecycle(rng, now),
        "postedBy": f"employer-{rng.randint(1, 300)}",
    }


def _repost(rng: random.Random, original: dict[str, Any], i: int, source: str, now: datetime) -> dict[str, Any]:
    """The same job posted again: as is (3 in 100 postings), in another city (2 in 100: the
    city is swapped in the text too) or anew after the original expired (1 in 100)."""
    copy = {**original, "externalId": f"{source}-{i:07d}"}
    kind = rng.choices(["same", "city", "again"], [3, 2, 1])[0]
    if kind == "city":
        old = original["location"]["city"]
        city = rng.choice([c for c in CITIES if c != old])
        copy["location"] = {**original["location"], "city": city, "region": CITIES[city]}
        copy["description"] = str(original["description"]).replace(old, city)
    elif kind == "again":
        created = now - timedelta(days=rng.uniform(0, 5))
        copy.update(status="active", isDeleted=False, createdAt=created, updatedAt=created,
                    expiresAt=created + timedelta(days=30))
    return copy


def generate_jobs(n: int, seed: int = 7, now: datetime | None = None,
                  source: str = "synthetic") -> list[dict[str, Any]]:
    """``n`` synthetic job documents in the data contract (without ``_id``), about 6 in 100
    of them reposts of an earlier one (:func:`_repost`)."""
    rng = random.Random(seed)
    now = now or datetime.now(timezone.utc)
    jobs: list[dict[str, Any]] = []
    for i in range(n):
        if jobs and rng.random() < 0.06:
            jobs.append(_repost(rng, rng.choice(jobs), i, source, now))
        else:
            jobs.append(_posting(rng, i, source, now))
    return jobs
