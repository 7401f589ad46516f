//! The only `unsafe` room: generated DPDK bindings, EAL, ports, queues, mempools and mbufs.
