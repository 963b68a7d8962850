"""The procedural world: deterministic, self-consistent, and answerable only from its documents."""

from __future__ import annotations

import json
import time

import pytest

from toolgym.envs.search.scoring import answer_in_text
from toolgym.envs.search.world import World, WorldConfig, get_world, world_from_row


@pytest.fixture(scope="module")
def world() -> World:
    return get_world(WorldConfig(seed=7, n_entities=120))


def test_same_seed_builds_the_same_world():
    first, second = World(WorldConfig(seed=3, n_entities=60)), World(WorldConfig(seed=3, n_entities=60))
    assert first.documents == second.documents
    assert [first.question_row(i) for i in range(20)] == [second.question_row(i) for i in range(20)]


def test_different_seeds_build_different_worlds():
    assert World(WorldConfig(seed=1, n_entities=60)).documents != World(WorldConfig(seed=2, n_entities=60)).documents


def test_entity_names_are_unique(world):
    names = [e.name.lower() for e in world.entities.values()]
    assert len(names) == len(set(names))


def test_distractors_are_added_and_never_asked_about(world):
    assert sum(e.distractor for e in world.entities.values()) == 120 // 4
    for i in range(200):
        subject_doc = world.question_row(i)["supporting_doc_ids"][0]
        assert not world.entities[subject_doc.split("#")[0]].distractor


@pytest.mark.parametrize("hops", [1, 2])
def test_answers_are_stated_in_the_supporting_documents(world, hops):
    documents = {doc.doc_id: doc for doc in world.documents}
    for i in range(100):
        row = world.question_row(i, hops=hops)
        assert len(row["supporting_doc_ids"]) == hops
        final_doc = documents[row["supporting_doc_ids"][-1]]
        assert answer_in_text(final_doc.text, row["answers"]), row


def test_bridge_questions_name_only_the_first_entity(world):
    documents = {doc.doc_id: doc for doc in world.documents}
    for i in range(100):
        row = world.question_row(i, hops=2)
        first, second = (documents[d] for d in row["supporting_doc_ids"])
        assert first.title in row["question"]
        assert second.title not in row["question"]
        assert second.title in first.text  # the bridge entity is learned from the first hit


def test_rows_are_json_serializable_and_rebuild_their_world(world):
    row = json.loads(json.dumps(world.question_row(5)))
    assert world_from_row(row) is world


def test_paragraphs_per_entity_splits_facts_across_documents():
    world = World(WorldConfig(seed=0, n_entities=40, paragraphs_per_entity=2))
    assert any("#1" in doc.doc_id for doc in world.documents)
    documents = {doc.doc_id: doc for doc in world.documents}
    for i in range(50):
        row = world.question_row(i, hops=1)
        assert answer_in_text(documents[row["supporting_doc_ids"][0]].text, row["answers"])


def test_default_world_builds_quickly():
    start = time.perf_counter()
    World(WorldConfig(seed=12345))
    assert time.perf_counter() - start < 1.0


def test_bad_knobs_are_refused():
    with pytest.raises(ValueError, match="n_entities"):
        World(WorldConfig(n_entities=5))
    with pytest.raises(ValueError, match="hops"):
        get_world(WorldConfig()).question_row(0, hops=3)


@pytest.mark.parametrize(("n_entities", "n_distractors"), [(20, 600), (200, 800)])
def test_every_world_within_the_bounds_builds_even_when_look_alike_names_run_out(n_entities, n_distractors):
    """Many distractors of few entities exhaust a city stem's ten look-alike names; the world
    still builds (the distractor takes a fresh name) instead of raising at reset."""
    world = World(WorldConfig(seed=1, n_entities=n_entities, n_distractors=n_distractors))
    names = [entity.name.lower() for entity in world.entities.values()]
    assert len(names) == len(set(names))
    assert sum(entity.distractor for entity in world.entities.values()) == n_distractors


def test_plain_pages_state_the_same_facts_in_one_fixed_sentence_each():
    """page_style="plain": same entities, questions and answers; no introduction; one wording per relation."""
    from toolgym.envs.search.world import _PLAIN_SENTENCES

    varied = World(WorldConfig(seed=4, n_entities=150))
    plain = World(WorldConfig(seed=4, n_entities=150, page_style="plain"))
    assert [d.doc_id for d in plain.documents] == [d.doc_id for d in varied.documents]
    for i in range(60):
        assert {**plain.question_row(i), "world": None} == {**varied.question_row(i), "world": None}
    documents = {doc.doc_id: doc for doc in plain.documents}
    for entity in plain.entities.values():
        text = documents[entity.entity_id].text
        expected = [_PLAIN_SENTENCES[r].format(s=entity.name, o=plain._value(v)) for r, v in entity.facts.items()]
        assert all(sentence in text for sentence in expected)
        assert len(text) == len(" ".join(expected))  # nothing but the facts
    assert sum(len(d.text) for d in plain.documents) < 0.75 * sum(len(d.text) for d in varied.documents)
    for i in range(60):
        row = plain.question_row(i, hops=2)
        assert answer_in_text(documents[row["supporting_doc_ids"][-1]].text, row["answers"])


def test_page_style_is_checked_in_the_config_the_env_and_task_rows():
    import gymnasium as gym

    import toolgym  # noqa: F401
    from toolgym.envs.rows import TaskRowError

    with pytest.raises(ValueError, match="page_style"):
        WorldConfig(page_style="fancy")
    env = gym.make("Search-v0", n_entities=60, page_style="plain", top_k=1)
    _, info = env.reset(seed=0)
    assert info["task"]["world"]["page_style"] == "plain"
    row = dict(info["task"], world={**info["task"]["world"], "page_style": "fancy"})
    with pytest.raises(TaskRowError, match="page_style"):
        env.reset(options={"task": row})
