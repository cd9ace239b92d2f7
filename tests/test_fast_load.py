"""components/fast_load.py: the trained model loaded without tracing a
training step answers exactly as Rasa's own loading of it does, and still
predicts through a traced graph (so answers stay as fast)."""

import asyncio

import pytest
from rasa.core.agent import Agent
from rasa.nlu.classifiers.diet_classifier import DIETClassifier

from clinic.evaluation import WRITTEN_SET, texts_of
from components import fast_load

QUESTIONS = 40


def _loaded(model_path):
    agent = Agent.load(str(model_path))
    nodes = agent.processor.graph_runner._instantiated_nodes.values()
    classifiers = [node._component for node in nodes if isinstance(node._component, DIETClassifier)]
    return agent, classifiers


def _parses(agent, texts):
    async def parse_all():
        return [await agent.parse_message(text) for text in texts]

    return asyncio.run(parse_all())


def _answers(parse):
    """The answer each ResponseSelector chose, by retrieval intent."""
    return {
        intent: selected["response"]["intent_response_key"]
        for intent, selected in parse["response_selector"].items()
        if intent != "all_retrieval_intents"
    }


@pytest.fixture(scope="module")
def texts():
    return texts_of(WRITTEN_SET)[:QUESTIONS]


def test_loads_without_a_training_graph_and_predicts_through_a_traced_one(trained_model):
    _, classifiers = _loaded(trained_model)
    # DIET and a ResponseSelector per retrieval intent
    assert len(classifiers) == 3
    for classifier in classifiers:
        model = classifier.model
        assert isinstance(model, fast_load._EagerlyBuilt), type(model)
        assert not model.run_eagerly
        assert model._tf_predict_step is not None  # traced while loading, not on a first visitor
        assert model.train_function is None or not hasattr(model.train_function, "get_concrete_function")


def test_answers_exactly_as_rasas_own_loading(trained_model, texts, monkeypatch):
    fast_agent, _ = _loaded(trained_model)
    fast = _parses(fast_agent, texts)

    # Rasa's own RasaModel.load, as if the mixin were not there
    def rasa_load(cls, *args, **kwargs):
        return super(fast_load._EagerlyBuilt, cls).load(*args, **kwargs)

    monkeypatch.setattr(fast_load._EagerlyBuilt, "load", classmethod(rasa_load))
    rasa_agent, classifiers = _loaded(trained_model)
    # the reference really traced its training step
    assert all(hasattr(c.model.train_function, "get_concrete_function") for c in classifiers)
    reference = _parses(rasa_agent, texts)

    assert sum(bool(_answers(parse)) for parse in fast) > QUESTIONS / 4
    for text, ours, theirs in zip(texts, fast, reference):
        assert ours["intent"]["name"] == theirs["intent"]["name"], text
        assert ours["intent"]["confidence"] == pytest.approx(theirs["intent"]["confidence"], abs=1e-5), text
        assert _answers(ours) == _answers(theirs), text
