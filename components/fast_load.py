"""Rasa's DIETClassifier and ResponseSelector, loaded without tracing a training step.

To give a loaded model weights of the right shapes, Rasa trains it for one
step on one example before reading the trained weights over them
(RasaModel.load), and Keras first traces that step into a graph: the forward
and backward pass of the whole model. A server only predicts, so that graph
is never used again, yet tracing it took nearly half of a server's start-up
(py-spy) and it stays in memory. These classes take that one step eagerly
instead: the same shapes, no graph. Prediction is still traced once at load,
as Rasa does, so answers are as fast as before; training is unchanged.
"""

from typing import Any, Optional, Text, Type

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier
from rasa.nlu.selectors.response_selector import DIET2BOW, DIET2DIET, ResponseSelector
from rasa.utils.tensorflow.constants import RUN_EAGERLY
from rasa.utils.tensorflow.model_data import RasaModelData
from rasa.utils.tensorflow.models import RasaModel


class _EagerlyBuilt:
    """Mixed into a RasaModel: its weights built eagerly when it is loaded."""

    @classmethod
    def load(
        cls,
        model_file_name: Text,
        model_data_example: RasaModelData,
        predict_data_example: Optional[RasaModelData] = None,
        finetune_mode: bool = False,
        *args: Any,
        **kwargs: Any,
    ) -> RasaModel:
        config = kwargs.get("config") or {}
        if finetune_mode or config.get(RUN_EAGERLY):
            # further training needs the traced training step after all
            return super().load(model_file_name, model_data_example, predict_data_example, finetune_mode, *args, **kwargs)
        kwargs["config"] = {**config, RUN_EAGERLY: True}
        # Rasa's load, eagerly: the one-example step builds the weights, the
        # trained ones are read over them, and a first prediction runs
        model = super().load(model_file_name, model_data_example, predict_data_example, finetune_mode, *args, **kwargs)
        model.config[RUN_EAGERLY] = False
        model.run_eagerly = False
        if predict_data_example:
            # traced now rather than on a visitor's first message
            model.run_inference(predict_data_example)
        return model


class FastLoadDIET(_EagerlyBuilt, DIET):
    pass


class FastLoadDIET2BOW(_EagerlyBuilt, DIET2BOW):
    pass


class FastLoadDIET2DIET(_EagerlyBuilt, DIET2DIET):
    pass


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR],
    is_trainable=True,
)
class FastLoadDIETClassifier(DIETClassifier):
    @staticmethod
    def model_class() -> Type[RasaModel]:
        return FastLoadDIET


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FastLoadResponseSelector(ResponseSelector):
    @staticmethod
    def model_class(use_text_as_label: bool) -> Type[RasaModel]:  # type: ignore[override]
        return FastLoadDIET2DIET if use_text_as_label else FastLoadDIET2BOW
