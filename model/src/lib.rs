//! The probabilistic layer: distributions, transforms and the model language (filled by the model issue).
