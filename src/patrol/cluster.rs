//! Cluster patrol: paged reads of nodes, workloads, storage, events and certificates through the
//! read-only cluster view, turned into findings.
