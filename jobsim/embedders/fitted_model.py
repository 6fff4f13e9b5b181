"""The corpus-fitted model: what :func:`fit_model` learns, immutable, serialised to bytes.

The bytes are a zlib-compressed payload: a JSON header (format, dimensions, parameters,
array layout), the vocabulary strings, then the arrays (little-endian). The version is
``jobsim-fitted-v1-<first 12 hex of sha256(payload)>``: any change of the model changes it,
and the same model always has the same version (the payload is written in a fixed order).

Format 2 has the same arrays as format 1; its header's parameters hold three more knobs.
Format 3 (:data:`FORMAT`) adds the ``company`` array (the employer block, written only when
it is not empty) and three more knobs. A format 1 or 2 header reads each missing knob at
:data:`LEGACY_PARAMS`, the value that embeds as that format did, and a model read from bytes
writes back exactly those bytes, so a stored format 1 or 2 model keeps its version and vectors.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

FORMAT = 3  # 2: FitParams gained the knobs below hash_seed (same arrays as 1); 3: the company block
FORMATS = (1, 2, 3)  # format 1 and 2 models still load, with the same version and vectors (LEGACY_PARAMS)
VERSION_PREFIX = "jobsim-fitted-v1-"
_ARRAYS = ("token_feature", "idf", "generic", "boilerplate", "lsa", "company")  # company: format 3, when not empty


@dataclass(frozen=True)
class FitParams:
    """Knobs of the fit and of the embedding (stored in the model)."""

    shingle: int = 3  # words per boilerplate shingle
    boilerplate_postings: int = 5  # a shingle in at least max(this, fraction·N) postings ...
    boilerplate_fraction: float = 0.005
    boilerplate_companies: int = 0  # ... (> 0: of at least this many distinct companies)
    min_df: int = 2  # body features in fewer postings are dropped
    max_features: int = 131_072
    body_idf_power: float = 1.0
    title_idf_power: float = 0.0
    generic_weight: float = 0.3  # rank / kind-of-post words (body, title lexical block); 0.5 in format 1
    lsa_dims: int = 128  # LSA block width (capped at dimensions // 2)
    lsa_features: int = 16_384  # most frequent features with an LSA row
    lsa_sample: int = 30_000  # postings the SVD is fitted on
    lsa_iterations: int = 5  # power iterations of the randomised SVD
    lsa_weight: float = 1.0
    char_weight: float = 1.5
    title_lexical_weight: float = 2.0  # title words + characters in the lexical block
    body_lexical_weight: float = 0.25  # body words in the lexical block
    hash_slots: int = 1  # slots per hashed feature (each at weight 1/√slots)
    hash_seed: int = 0  # set from fit_model's seed
    # -- format 2 (a format 1 model reads these as LEGACY_PARAMS: its vectors never change) --
    lsa_postings_per_dim: int = 20  # > 0: LSA dims ≤ fitted postings / this (small corpora get fewer)
    title_bigram_weight: float = 0.5  # > 0: adjacent title stems as hashed bigrams beside the title words
    title_lsa_generic_weight: float = 1.5  # ≥ 0: generic title words at this weight in the LSA input (< 0: generic_weight)
    # -- format 3 (a format 1 or 2 model reads these as LEGACY_PARAMS: no company block) --
    company_dims: int = 32  # > 0: employer block width (≤ distinct companies): title words → their companies
    company_weight: float = 2.0  # weight of the employer block beside the LSA block (1) and the lexical block (≈ 2)
    company_min_postings: int = 2  # a title word needs this many (posting, company) pairs for a company profile


# Values of the format 2 parameters that reproduce a format 1 model exactly: a stored header
# without one of these keys reads it at this value.
LEGACY_PARAMS = {"lsa_postings_per_dim": 0, "title_bigram_weight": 0.0, "title_lsa_generic_weight": -1.0,
                 "company_dims": 0, "company_weight": 0.0, "company_min_postings": 2}


@dataclass(frozen=True, eq=False)
class FittedModel:
    """Vocabulary, document frequencies, boilerplate shingles and the LSA projection."""

    dimensions: int
    params: FitParams
    tokens: tuple[str, ...]  # body vocabulary (surface tokens, function words included)
    features: tuple[str, ...]  # stems, most frequent first
    token_feature: np.ndarray  # (tokens,) int32 feature of each token, -1 = function word
    idf: np.ndarray  # (features,) float32 smoothed idf
    generic: np.ndarray  # (features,) bool: rank / kind-of-post word
    boilerplate: np.ndarray  # sorted uint64 shingle hashes
    lsa: np.ndarray  # (lsa features, lsa dims) float16
    # (features with a row, company dims) float16: each title word's company profile, projected (format 3)
    company: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float16))
    version: str = field(default="")
    payload: bytes = field(default=b"", init=False, repr=False)  # as read by from_bytes: written back unchanged

    def __post_init__(self) -> None:
        for name in _ARRAYS:
            getattr(self, name).setflags(write=False)
        if not self.version:
            object.__setattr__(self, "version", VERSION_PREFIX + hashlib.sha256(self._payload()).hexdigest()[:12])

    def __reduce__(self) -> tuple:
        """Pickled as its bytes: an unpickled model is validated and read-only like any other."""
        return (FittedModel.from_bytes, (self.to_bytes(),))

    @property
    def lsa_dims(self) -> int:
        return int(self.lsa.shape[1])

    @property
    def company_dims(self) -> int:
        return int(self.company.shape[1])

    def _payload(self) -> bytes:
        if self.payload:
            return self.payload
        names = [n for n in _ARRAYS if n != "company" or self.company.size]  # formats 1-2 have no company
        arrays = [np.ascontiguousarray(getattr(self, name)) for name in names]
        header = {
            "format": FORMAT, "dimensions": self.dimensions, "params": asdict(self.params),
            "tokens": len(self.tokens), "features": len(self.features),
            "arrays": [[name, a.dtype.newbyteorder("<").str, list(a.shape)] for name, a in zip(names, arrays)],
        }
        blob = json.dumps(header, sort_keys=True).encode()
        strings = "\n".join(self.tokens + self.features).encode()
        parts = [len(blob).to_bytes(8, "little"), blob, len(strings).to_bytes(8, "little"), strings]
        parts += [a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes() for a in arrays]
        return b"".join(parts)

    def to_bytes(self) -> bytes:
        return zlib.compress(self._payload(), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> "FittedModel":
        payload = zlib.decompress(data)
        size = int.from_bytes(payload[:8], "little")
        header = json.loads(payload[8 : 8 + size])
        if header.get("format") not in FORMATS:
            raise ValueError(f"unknown fitted model format {header.get('format')!r}")
        at = 8 + size
        n_strings = int.from_bytes(payload[at : at + 8], "little")
        strings = payload[at + 8 : at + 8 + n_strings].decode()
        words = tuple(strings.split("\n")) if strings else ()
        at += 8 + n_strings
        arrays = {}
        for name, dtype, shape in header["arrays"]:
            count = int(np.prod(shape)) if shape else 1
            array = np.frombuffer(payload, dtype=np.dtype(dtype), count=count, offset=at).reshape(shape)
            arrays[name] = array.astype(array.dtype.newbyteorder("="))
            at += array.nbytes
        n_tokens = header["tokens"]
        params = FitParams(**{**LEGACY_PARAMS, **header["params"]})
        model = cls(dimensions=header["dimensions"], params=params,
                    tokens=words[:n_tokens], features=words[n_tokens:], **arrays,
                    version=VERSION_PREFIX + hashlib.sha256(payload).hexdigest()[:12])
        object.__setattr__(model, "payload", payload)
        return model
