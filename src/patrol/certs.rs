//! Expiry of TLS certificates: the notAfter of a PEM chain's leaf, and the finding it makes.
