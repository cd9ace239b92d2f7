"""Rasa's LanguageModelFeaturizer, with the sentence feature mean-pooled, for
the visitor's text only.

The encoder (all-MiniLM-L6-v2, scripts/encoder.yml) was trained to give a
sentence's meaning as the mean of its token embeddings; Rasa takes a BERT
model's sentence feature from the [CLS] token instead, which this model
never trained. Measured on our data: with [CLS], "my butt hurts when I sit"
is as close to "how much does it cost" (cosine 0.68) as to "pain in my
buttock" (0.79); mean-pooled, 0.01 against 0.66. Token features are Rasa's.

A process loads the encoder once, whatever number of models use it: a model
published into a running server reuses the running model's encoder (the same
verified files) instead of loading and tracing a second copy.
"""

import os
from typing import Any, Callable, Dict, List, Text, Tuple

import numpy as np
import tensorflow as tf
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.featurizers.dense_featurizer.lm_featurizer import LanguageModelFeaturizer
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.model_data import ragged_array_to_ndarray

TRAINING_BATCH = 64  # Rasa's
# (model name, weights folder, its files' sizes and times) -> [tokenizer, model, traced call]
_ENCODERS: Dict[Tuple, List[Any]] = {}


def _encoder_key(model_name: Text, weights: Text) -> Tuple:
    folder = os.path.realpath(weights)
    files = sorted((entry.name, entry.stat().st_size, entry.stat().st_mtime_ns) for entry in os.scandir(folder))
    return (model_name, folder, tuple(files))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class MeanPooledLanguageModelFeaturizer(LanguageModelFeaturizer):
    def __init__(self, config: Dict[Text, Any], execution_context: ExecutionContext) -> None:
        super().__init__(config, execution_context)
        # Trace the encoder now, not on a visitor's first message (about
        # 8 s on two cores, which overran the turn's budget).
        self._compute_batch_sequence_features(np.ones((1, 2)), [[self.tokenizer.cls_token_id, self.tokenizer.sep_token_id]])

    def _load_model_instance(self) -> None:
        key = _encoder_key(self.model_name, self.model_weights)
        if key not in _ENCODERS:
            super()._load_model_instance()
            _ENCODERS[key] = [self.tokenizer, self.model, None]
        self._encoder = _ENCODERS[key]
        self.tokenizer, self.model = self._encoder[0], self._encoder[1]
        self.pad_token_id = self.tokenizer.unk_token_id

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        examples = [example for example in training_data.training_examples if example.get(TEXT)]
        # similar lengths together: a batch is padded to its longest text
        examples.sort(key=lambda example: len(example.get(TOKENS_NAMES[TEXT]) or []))
        for start in range(0, len(examples), TRAINING_BATCH):
            batch = examples[start:start + TRAINING_BATCH]
            for example, doc in zip(batch, self._get_docs_for_batch(batch, TEXT)):
                self._set_lm_features(doc, example, TEXT)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        batch = [message for message in messages if message.get(TEXT)]
        if batch:
            for message, doc in zip(batch, self._get_docs_for_batch(batch, TEXT, inference_mode=True)):
                self._set_lm_features(doc, message, TEXT)
        return messages

    def _compute_batch_sequence_features(self, batch_attention_mask: np.ndarray, padded_token_ids: List[List[int]]) -> np.ndarray:
        traced: Callable = self._encoder[2]
        if traced is None:
            model = self.model
            traced = self._encoder[2] = tf.function(
                lambda ids, mask: model(ids, attention_mask=mask)[0],
                input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32)],
            )
        ids = tf.convert_to_tensor(np.asarray(padded_token_ids, dtype=np.int32))
        mask = tf.convert_to_tensor(np.asarray(batch_attention_mask, dtype=np.int32))
        return traced(ids, mask).numpy()

    def _lm_tokenize(self, text: str) -> Tuple[List[int], List[str]]:
        ids, pieces = super()._lm_tokenize(text)
        if not ids:
            return [self.tokenizer.unk_token_id], [self.tokenizer.unk_token]
        return ids, pieces

    def _post_process_sequence_embeddings(self, sequence_embeddings: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(sentence features: the mean over every token, [CLS] and [SEP] included,
        as sentence-transformers pools; token features without [CLS] and [SEP])."""
        sentences = np.array([example.mean(axis=0) for example in sequence_embeddings])
        tokens = ragged_array_to_ndarray([example[1:-1] for example in sequence_embeddings])
        return sentences, tokens
