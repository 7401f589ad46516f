/*
 * vipmux DPDK shim: real symbols for the static-inline functions and the function-like-macro
 * constants of DPDK that the Rust side uses. bindgen reads this header (which includes the DPDK
 * headers) and build.rs compiles shim.c with the flags of `pkg-config --cflags libdpdk`.
 */
#ifndef VIPMUX_DPDK_SHIM_H
#define VIPMUX_DPDK_SHIM_H

#include <stdint.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_cycles.h>
#include <rte_flow.h>

/* RSS hash types (function-like macros in rte_ethdev.h). */
extern const uint64_t VIPMUX_ETH_RSS_IP;
extern const uint64_t VIPMUX_ETH_RSS_TCP;
extern const uint64_t VIPMUX_ETH_RSS_UDP;
/* The source-only / destination-only RSS modifiers (L3 and L4) flow steering by endpoint needs. */
extern const uint64_t VIPMUX_ETH_RSS_ENDPOINT_ONLY;
/* Default mbuf data room (RTE_MBUF_DEFAULT_BUF_SIZE: data room plus headroom). */
extern const uint16_t VIPMUX_MBUF_DEFAULT_BUF_SIZE;
/* rte_lcore_id() of a thread that is not a DPDK thread. */
extern const unsigned VIPMUX_LCORE_ID_ANY;
/* SOCKET_ID_ANY. */
extern const int VIPMUX_SOCKET_ID_ANY;

/* rte_errno of the calling thread. */
int vipmux_errno(void);
/* rte_lcore_id() of the calling thread. */
unsigned vipmux_lcore_id(void);

uint16_t vipmux_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t vipmux_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

struct rte_mbuf *vipmux_pktmbuf_alloc(struct rte_mempool *mp);
int vipmux_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count);
void vipmux_pktmbuf_free(struct rte_mbuf *m);
/* Returns the new data start, or NULL (mbuf unchanged) when the space is missing. */
char *vipmux_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *vipmux_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
/* 0 on success, -1 (mbuf unchanged) when len exceeds the last segment. */
int vipmux_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
char *vipmux_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t vipmux_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t vipmux_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t vipmux_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t vipmux_pktmbuf_tailroom(const struct rte_mbuf *m);
uint16_t vipmux_pktmbuf_nb_segs(const struct rte_mbuf *m);
uint16_t vipmux_pktmbuf_port(const struct rte_mbuf *m);
void vipmux_pktmbuf_reset(struct rte_mbuf *m);

/*
 * One rte_flow rule as vipmux builds them (docs/design.md section 6.2): pattern
 * ETH / IPV4 (source and destination under masks) / TCP or UDP (ports under masks; no L4 item
 * when proto is 0), ingress, at `priority`; action RSS over `queues` with `key` (Toeplitz, level
 * 0) hashing the source endpoint only (hash 1) or the destination endpoint only (hash 2), or
 * QUEUE to `queue` (hash 0). Addresses and ports in host order.
 */
struct vipmux_flow_spec {
	uint32_t src;
	uint32_t src_mask;
	uint32_t dst;
	uint32_t dst_mask;
	uint8_t proto;
	uint16_t sport;
	uint16_t sport_mask;
	uint16_t dport;
	uint16_t dport_mask;
	uint32_t priority;
	int hash;
	uint16_t queue;
	const uint8_t *key;
	uint32_t key_len;
	const uint16_t *queues;
	uint32_t queue_num;
};

/*
 * rte_flow_validate / rte_flow_create / rte_flow_destroy / rte_flow_flush. On failure the
 * driver's message (or "") is copied into msg (len bytes, NUL-terminated); validate, destroy and
 * flush return a negative errno, create returns NULL with rte_errno set.
 */
int vipmux_flow_validate(uint16_t port, const struct vipmux_flow_spec *spec, char *msg, size_t len);
struct rte_flow *vipmux_flow_create(uint16_t port, const struct vipmux_flow_spec *spec, char *msg,
				    size_t len);
int vipmux_flow_destroy(uint16_t port, struct rte_flow *flow, char *msg, size_t len);
int vipmux_flow_flush(uint16_t port, char *msg, size_t len);

#endif

/*
 * The lock DPDK 22.11's memif driver takes in its disconnect path (the control-channel lock of
 * its private device data) before it unmaps the shared regions; NULL unless port `port` is a
 * memif device of DPDK 22.11 whose private data passes the layout checks. `*client` is set to 1
 * for the client role (0: server), `*zero_copy` to 1 for a zero-copy device. See shim.c.
 */
void *vipmux_memif_teardown_lock(uint16_t port, int *client, int *zero_copy);
/* rte_spinlock_trylock / rte_spinlock_unlock on a lock from vipmux_memif_teardown_lock. */
int vipmux_teardown_lock_try(void *lock);
void vipmux_teardown_lock_release(void *lock);
