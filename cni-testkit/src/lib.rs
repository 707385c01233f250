//! Test kit for CNI plugins: throw-away namespaces, plugin and chain runners, a conformance suite
