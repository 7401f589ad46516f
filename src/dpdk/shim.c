/*
 * vipmux DPDK shim: see shim.h. Every function is a thin wrapper over a DPDK static-inline
 * function or macro; no logic lives here.
 */
#include "shim.h"

const uint64_t VIPMUX_ETH_RSS_IP = RTE_ETH_RSS_IP;
const uint64_t VIPMUX_ETH_RSS_TCP = RTE_ETH_RSS_TCP;
const uint64_t VIPMUX_ETH_RSS_UDP = RTE_ETH_RSS_UDP;
const uint64_t VIPMUX_ETH_RSS_ENDPOINT_ONLY = RTE_ETH_RSS_L3_SRC_ONLY | RTE_ETH_RSS_L3_DST_ONLY |
                                             RTE_ETH_RSS_L4_SRC_ONLY | RTE_ETH_RSS_L4_DST_ONLY;
const uint16_t VIPMUX_MBUF_DEFAULT_BUF_SIZE = RTE_MBUF_DEFAULT_BUF_SIZE;
const unsigned VIPMUX_LCORE_ID_ANY = LCORE_ID_ANY;
const int VIPMUX_SOCKET_ID_ANY = SOCKET_ID_ANY;

int vipmux_errno(void) { return rte_errno; }
unsigned vipmux_lcore_id(void) { return rte_lcore_id(); }

uint16_t vipmux_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t vipmux_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *vipmux_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

int vipmux_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void vipmux_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
char *vipmux_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *vipmux_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *vipmux_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int vipmux_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
char *vipmux_pktmbuf_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, char *); }
uint16_t vipmux_pktmbuf_data_len(const struct rte_mbuf *m) { return rte_pktmbuf_data_len(m); }
uint32_t vipmux_pktmbuf_pkt_len(const struct rte_mbuf *m) { return rte_pktmbuf_pkt_len(m); }
uint16_t vipmux_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t vipmux_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
uint16_t vipmux_pktmbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
uint16_t vipmux_pktmbuf_port(const struct rte_mbuf *m) { return m->port; }
void vipmux_pktmbuf_reset(struct rte_mbuf *m) { rte_pktmbuf_reset(m); }
