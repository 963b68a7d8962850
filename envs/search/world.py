"""A seeded synthetic knowledge base, its document corpus and multi-hop questions over it.

Why invent a world: questions about real entities can be answered from pretraining, so they do
not measure searching. Here every name is built from random syllables, every fact is drawn from a
seeded RNG, and the only way to learn that "Tarvo Quelmin was born in Osdravel" is to retrieve the
paragraph that says so. Bridge (2-hop) questions chain two facts ("the founder of X was born in
which city?"), so the agent must search for the bridge entity it learned from the first hit.

One `World` per `WorldConfig` (seed, size, distractors): build it once and reuse it across
episodes (`get_world` caches). Question `i` is drawn from its own RNG, so a task row only needs the
world reference and `i` to be rebuilt anywhere.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from toolgym.retriever_contract import Document

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "qu", "th", "sk"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou"]
_CODAS = ["", "", "", "n", "r", "l", "s", "th", "m", "x"]
_CITY_SUFFIXES = ["vel", "mora", "dor", "heim", "stad", "ford", "grad", "mouth", "ora", "lin"]
_COUNTRY_SUFFIXES = ["ia", "land", "stan", "ovia", "ara", "esh"]
_COMPANY_SUFFIXES = ["Industries", "Works", "Foundry", "Trading Company", "Labs", "Holdings", "Shipyards"]
_OCCUPATIONS = [
    "an engineer",
    "a painter",
    "a merchant",
    "a botanist",
    "a composer",
    "a cartographer",
    "a physician",
    "an architect",
]
_PRODUCTS = ["glassware", "clockwork", "textiles", "river barges", "telescopes", "printing presses", "porcelain"]

# kind -> share of the non-distractor entities
_KIND_SHARES = {"country": 0.08, "river": 0.08, "city": 0.26, "person": 0.33, "company": 0.25}

# relation -> (subject kind, question templates); {s} is the subject's name
ONE_HOP: dict[str, tuple[str, list[str]]] = {
    "born_in": ("person", ["In which city was {s} born?", "Where was {s} born?", "What is the birthplace of {s}?"]),
    "born_year": ("person", ["In what year was {s} born?", "When was {s} born?"]),
    "founded_by": ("company", ["Who founded {s}?", "Who is the founder of {s}?"]),
    "headquartered_in": ("company", ["In which city is {s} headquartered?", "Where is {s} based?"]),
    "founded_year": ("company", ["In what year was {s} founded?", "When was {s} established?"]),
    "located_in": ("city", ["In which country is {s} located?", "{s} is a city in which country?"]),
    "on_river": ("city", ["On which river does {s} lie?", "Which river runs through {s}?"]),
    "capital": ("country", ["What is the capital of {s}?", "Which city is the capital of {s}?"]),
    "flows_through": ("river", ["Through which country does {s} flow?", "In which country does {s} run?"]),
}

# (first relation, second relation) -> templates; the bridge entity is the first relation's value
BRIDGES: dict[tuple[str, str], list[str]] = {
    ("founded_by", "born_in"): ["In which city was the founder of {s} born?"],
    ("founded_by", "born_year"): ["In what year was the founder of {s} born?"],
    ("headquartered_in", "located_in"): ["In which country is the city where {s} is headquartered?"],
    ("headquartered_in", "on_river"): ["On which river lies the city where {s} has its headquarters?"],
    ("located_in", "capital"): ["What is the capital of the country in which {s} lies?"],
    ("born_in", "located_in"): ["In which country is the birthplace of {s}?"],
    ("born_in", "on_river"): ["Which river runs through the city where {s} was born?"],
}

# relation -> sentence templates; {s} subject name, {o} object (name or year)
_SENTENCES: dict[str, list[str]] = {
    "born_in": [
        "{s} was born in {o}.",
        "Born in the city of {o}, {s} grew up near its markets.",
        "{s} is a native of {o}.",
    ],
    "born_year": ["{s} was born in {o}.", "{s}'s year of birth is {o}.", "Records give {o} as the year {s} was born."],
    "occupation": ["{s} worked as {o}.", "By trade, {s} was {o}."],
    "founded_by": ["{s} was founded by {o}.", "{o} established {s}.", "The founder of {s} is {o}."],
    "headquartered_in": [
        "{s} is headquartered in {o}.",
        "The head office of {s} stands in {o}.",
        "{s} is based in {o}.",
    ],
    "founded_year": ["{s} was founded in {o}.", "{s} dates back to {o}.", "{s} was established in the year {o}."],
    "product": ["{s} is known for its {o}.", "{s} makes {o}."],
    "located_in": ["{s} is a city in {o}.", "{s} lies in the country of {o}.", "{s} is located in {o}."],
    "on_river": ["{s} lies on the banks of {o}.", "{o} runs through {s}.", "{s} was built along {o}."],
    "capital": [
        "The capital of {s} is {o}.",
        "{o} serves as the capital of {s}.",
        "{s} is governed from its capital, {o}.",
    ],
    "flows_through": ["{s} flows through {o}.", "{s} is a river of {o}.", "{s} runs across {o}."],
}
_INTROS = {
    "person": "{s} is a figure remembered in local histories.",
    "company": "{s} is a company with a long record of trade.",
    "city": "{s} is a settlement with an old town centre.",
    "country": "{s} is a country.",
    "river": "{s} is a river.",
}
_SECTION_TITLES = ["history", "background", "records", "notes"]

# page_style="plain": one fixed sentence per relation and no introduction, so a page states its
# facts in the fewest tokens. A tiny model trained from scratch on CPU learns to read these pages in
# minutes (the tiny-learning recipe), where the varied pages' 27 paraphrases and intros take far
# longer. Each wording names its relation, so no two relations share a sentence shape.
_PLAIN_SENTENCES: dict[str, str] = {
    "born_in": "{s} was born in the city of {o}.",
    "born_year": "{s} was born in the year {o}.",
    "occupation": "{s} worked as {o}.",
    "founded_by": "{s} was founded by {o}.",
    "headquartered_in": "{s} is headquartered in {o}.",
    "founded_year": "{s} was founded in the year {o}.",
    "product": "{s} makes {o}.",
    "located_in": "{s} is a city in {o}.",
    "on_river": "{s} lies on the {o}.",
    "capital": "The capital of {s} is {o}.",
    "flows_through": "{s} flows through {o}.",
}
PAGE_STYLES = ("varied", "plain")


# Upper bounds on what sizes a world (the build is quadratic in entities: 5,000 take ~2 s, 10,000
# ~7 s), so neither a constructor argument nor a task row can ask for one that exhausts memory.
MIN_ENTITIES, MAX_ENTITIES = 20, 10_000
MAX_DISTRACTORS = 10_000
MAX_PARAGRAPHS_PER_ENTITY = 16
MAX_SEED = 2**63 - 1


class _NamesExhausted(RuntimeError):
    """No unused name could be drawn for an entity."""


@dataclass(frozen=True)
class WorldConfig:
    """What fixes a world: its seed, size and how many look-alike distractor entities it holds."""

    seed: int = 0
    n_entities: int = 200
    n_distractors: int | None = None  # default: a quarter of n_entities
    paragraphs_per_entity: int = 1
    page_style: str = "varied"
    """"varied" (default): an introduction and one of several wordings per fact; "plain": one fixed
    sentence per relation, no introduction (same entities, facts and questions, shorter pages)."""

    def __post_init__(self) -> None:
        if self.page_style not in PAGE_STYLES:
            raise ValueError(f"world parameter page_style must be one of {PAGE_STYLES}, got {self.page_style!r}")
        bounds = {
            "seed": (-MAX_SEED, MAX_SEED),
            "n_entities": (MIN_ENTITIES, MAX_ENTITIES),
            "n_distractors": (0, MAX_DISTRACTORS),
            "paragraphs_per_entity": (1, MAX_PARAGRAPHS_PER_ENTITY),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if name == "n_distractors" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                shown = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge integer"
                raise ValueError(f"world parameter {name} must be an integer in [{low}, {high}], got {shown}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Entity:
    """One invented entity and its facts (object values are entity ids or years)."""

    entity_id: str
    kind: str
    name: str
    facts: dict[str, Any] = field(default_factory=dict)
    distractor: bool = False
    aliases: list[str] = field(default_factory=list)


class World:
    """The knowledge base, its corpus (`documents`) and a question generator (`question_row`)."""

    def __init__(self, config: WorldConfig):
        self.config = config
        self.rng = random.Random(f"toolgym-world-{config.seed}")
        self._used_names: set[str] = set()
        self._exhausted: set[str] = set()  # entities whose look-alike names are all taken
        self.entities: dict[str, Entity] = {}
        self._build_entities()
        self.documents: list[Document] = []
        self.fact_doc: dict[tuple[str, str], str] = {}  # (entity id, relation) -> doc id stating it
        self._build_documents()

    # --- names ----------------------------------------------------------------------------------

    def _word(self, syllables: int) -> str:
        parts = [self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) for _ in range(syllables)]
        return ("".join(parts) + self.rng.choice(_CODAS)).capitalize()

    def _unique(self, make: Any) -> str:
        for _ in range(1000):
            name = make()
            if name.lower() not in self._used_names:
                self._used_names.add(name.lower())
                return name
        raise _NamesExhausted("could not draw a unique name; the syllable inventory is exhausted")

    def _name(self, kind: str, like: Entity | None = None) -> str:
        rng = self.rng
        if kind == "person":
            surname = like.name.split()[-1] if like else self._word(rng.randint(2, 3))
            return self._unique(lambda: f"{self._word(2)} {surname if like else self._word(rng.randint(2, 3))}")
        if kind == "city":
            stem = like.name[: max(3, len(like.name) // 2)] if like else None
            return self._unique(lambda: (stem or self._word(rng.randint(1, 2))) + rng.choice(_CITY_SUFFIXES))
        if kind == "country":
            return self._unique(lambda: self._word(rng.randint(1, 2)) + rng.choice(_COUNTRY_SUFFIXES))
        if kind == "river":
            return self._unique(lambda: f"{self._word(2)} River")
        stem = like.name.split()[0] if like else None
        return self._unique(lambda: f"{stem or self._word(rng.randint(2, 3))} {rng.choice(_COMPANY_SUFFIXES)}")

    # --- the knowledge base ---------------------------------------------------------------------

    def _add(self, kind: str, like: Entity | None = None) -> Entity:
        index = sum(1 for e in self.entities.values() if e.kind == kind)
        try:
            if like is not None and like.entity_id in self._exhausted:
                raise _NamesExhausted(like.entity_id)
            name = self._name(kind, like)
        except _NamesExhausted:
            if like is None:
                raise
            # Every look-alike of `like` is taken (a city stem has ten suffixes): a fresh name keeps
            # every in-bounds config buildable. Worlds that never get here are unchanged.
            self._exhausted.add(like.entity_id)
            name = self._name(kind)
        entity = Entity(f"{kind}-{index:04d}", kind, name, distractor=like is not None)
        if kind == "river":
            entity.aliases = [entity.name.removesuffix(" River")]
        if kind == "company":
            entity.aliases = [entity.name.split()[0]]
        self.entities[entity.entity_id] = entity
        return entity

    def _of_kind(self, kind: str, *, real_only: bool = True) -> list[Entity]:
        return [e for e in self.entities.values() if e.kind == kind and not (real_only and e.distractor)]

    def _fill_facts(self, entity: Entity) -> None:
        rng = self.rng
        cities, countries, rivers = self._of_kind("city"), self._of_kind("country"), self._of_kind("river")
        if entity.kind == "river":
            entity.facts["flows_through"] = rng.choice(countries).entity_id
        elif entity.kind == "city":
            country = rng.choice(countries).entity_id
            local = [r for r in rivers if r.facts["flows_through"] == country] or rivers
            entity.facts.update(
                located_in=country, on_river=rng.choice(local).entity_id, founded_year=rng.randint(900, 1800)
            )
        elif entity.kind == "person":
            entity.facts.update(
                born_in=rng.choice(cities).entity_id,
                born_year=rng.randint(1780, 1990),
                occupation=rng.choice(_OCCUPATIONS),
            )
        elif entity.kind == "company":
            founder = rng.choice(self._of_kind("person"))
            entity.facts.update(
                founded_by=founder.entity_id,
                headquartered_in=rng.choice(cities).entity_id,
                founded_year=founder.facts["born_year"] + rng.randint(20, 50),
                product=rng.choice(_PRODUCTS),
            )

    def _build_entities(self) -> None:
        counts = {kind: max(2, round(share * self.config.n_entities)) for kind, share in _KIND_SHARES.items()}
        for kind in ("country", "river", "city", "person", "company"):
            for _ in range(counts[kind]):
                self._fill_facts(self._add(kind))
        # Every country needs a capital among its own cities; add one where the draw left none.
        for country in self._of_kind("country"):
            own = [c for c in self._of_kind("city") if c.facts["located_in"] == country.entity_id]
            if not own:
                city = self._add("city")
                self._fill_facts(city)
                city.facts["located_in"] = country.entity_id
                own = [city]
            country.facts["capital"] = self.rng.choice(own).entity_id
        n_distractors = self.config.n_entities // 4 if self.config.n_distractors is None else self.config.n_distractors
        targets = [e for e in self.entities.values() if e.kind in ("person", "city", "company")]
        for _ in range(n_distractors):
            original = self.rng.choice(targets)
            self._fill_facts(self._add(original.kind, like=original))

    # --- the corpus -----------------------------------------------------------------------------

    def _value(self, value: Any) -> str:
        return self.entities[value].name if isinstance(value, str) and value in self.entities else str(value)

    def _build_documents(self) -> None:
        paragraphs = self.config.paragraphs_per_entity
        order = sorted(self.entities.values(), key=lambda e: self.rng.random())
        for entity in order:
            relations = list(entity.facts)
            self.rng.shuffle(relations)
            sections: list[list[str]] = [[] for _ in range(paragraphs)]
            doc_ids = [entity.entity_id if i == 0 else f"{entity.entity_id}#{i}" for i in range(paragraphs)]
            plain = self.config.page_style == "plain"
            if not plain:
                sections[0].append(_INTROS[entity.kind].format(s=entity.name))
            for position, relation in enumerate(relations):
                part = position % paragraphs
                template = self.rng.choice(_SENTENCES[relation])  # drawn in both styles: same RNG stream
                if plain:
                    template = _PLAIN_SENTENCES[relation]
                sections[part].append(template.format(s=entity.name, o=self._value(entity.facts[relation])))
                self.fact_doc[(entity.entity_id, relation)] = doc_ids[part]
            for part, sentences in enumerate(sections):
                title = entity.name if part == 0 else f"{entity.name} ({_SECTION_TITLES[(part - 1) % 4]})"
                self.documents.append(Document(doc_ids[part], title, " ".join(sentences)))

    # --- questions ------------------------------------------------------------------------------

    def question_row(self, index: int, hops: int | None = None) -> dict[str, Any]:
        """Question `index` as a JSON-serializable task row; `hops` 1 or 2, None draws either."""
        if hops not in (None, 1, 2):
            raise ValueError(f"hops must be 1, 2 or None (either), got {hops!r}")
        rng = random.Random(f"toolgym-question-{self.config.seed}-{index}")
        hop_count = hops if hops is not None else rng.choice((1, 2))
        if hop_count == 1:
            relation = rng.choice(sorted(ONE_HOP))
            kind, templates = ONE_HOP[relation]
            subject = rng.choice(self._of_kind(kind))
            answer = subject.facts[relation]
            support = [self.fact_doc[(subject.entity_id, relation)]]
        else:
            first, second = rng.choice(sorted(BRIDGES))
            templates = BRIDGES[(first, second)]
            subject = rng.choice(self._of_kind(ONE_HOP[first][0]))
            bridge = self.entities[subject.facts[first]]
            answer = bridge.facts[second]
            support = [self.fact_doc[(subject.entity_id, first)], self.fact_doc[(bridge.entity_id, second)]]
        answers = [self._value(answer)]
        if isinstance(answer, str) and answer in self.entities:
            answers += self.entities[answer].aliases
        question = rng.choice(templates).format(s=subject.name)
        return {
            "id": f"world{self.config.seed}-q{index}",
            "question": question,
            "answer": answers[0],
            "answers": answers,
            "supporting_doc_ids": list(dict.fromkeys(support)),
            "hops": hop_count,
            "world": self.config.to_dict(),
            "question_index": index,
        }


@lru_cache(maxsize=16)
def get_world(config: WorldConfig) -> World:
    """The world for `config`, built once per process."""
    return World(config)


def world_question_row(config: WorldConfig, hops: int | None, index: int) -> dict[str, Any]:
    """Question `index` of the world `config` (a module-level function, so task sources pickle)."""
    return get_world(config).question_row(index, hops)


def world_from_row(row: dict[str, Any]) -> World:
    """The world a procedural task row refers to (rebuilt from its `world` reference, cached)."""
    reference = row.get("world")
    if not isinstance(reference, dict):
        raise ValueError("a procedural task row needs a 'world' dict (seed, n_entities, ...)")
    known = set(WorldConfig.__dataclass_fields__)
    return get_world(WorldConfig(**{k: v for k, v in reference.items() if k in known}))
