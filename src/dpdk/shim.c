/*
 * vipmux DPDK shim: see shim.h. Every function is a thin wrapper over a DPDK static-inline
 * function or macro; no logic lives here, except the rte_flow rule builder (the item and action
 * structures of one vipmux_flow_spec) and vipmux_memif_teardown_lock at the end (a lookup in
 * the memif driver's private data, DPDK 22.11 only).
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <rte_spinlock.h>
#include <rte_version.h>

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

/* The message of a failed rte_flow call into msg. */
static void flow_message(const struct rte_flow_error *err, char *msg, size_t len)
{
	if (msg == NULL || len == 0)
		return;
	snprintf(msg, len, "%s", err->message != NULL ? err->message : "");
}

/* The items, actions and their specifications of one rule (see vipmux_flow_spec). */
struct flow_parts {
	struct rte_flow_attr attr;
	struct rte_flow_item_ipv4 ip_spec, ip_mask;
	struct rte_flow_item_tcp tcp_spec, tcp_mask;
	struct rte_flow_item_udp udp_spec, udp_mask;
	struct rte_flow_item pattern[4];
	struct rte_flow_action_rss rss;
	struct rte_flow_action_queue queue;
	struct rte_flow_action actions[2];
};

/* The source and destination ports of spec into the L4 headers (packed) of an item's
 * specification and mask. */
#define FLOW_PORTS(spec, spec_hdr, mask_hdr)                                     \
	do {                                                                      \
		(spec_hdr).src_port = rte_cpu_to_be_16((spec)->sport);            \
		(spec_hdr).dst_port = rte_cpu_to_be_16((spec)->dport);            \
		(mask_hdr).src_port = rte_cpu_to_be_16((spec)->sport_mask);       \
		(mask_hdr).dst_port = rte_cpu_to_be_16((spec)->dport_mask);       \
	} while (0)

/* The L4 item of spec into *item (TCP, UDP or the pattern's end). */
static void flow_l4(const struct vipmux_flow_spec *spec, struct flow_parts *p,
		    struct rte_flow_item *item)
{
	if (spec->proto == IPPROTO_TCP) {
		FLOW_PORTS(spec, p->tcp_spec.hdr, p->tcp_mask.hdr);
		item->type = RTE_FLOW_ITEM_TYPE_TCP;
		item->spec = &p->tcp_spec;
		item->mask = &p->tcp_mask;
	} else if (spec->proto == IPPROTO_UDP) {
		FLOW_PORTS(spec, p->udp_spec.hdr, p->udp_mask.hdr);
		item->type = RTE_FLOW_ITEM_TYPE_UDP;
		item->spec = &p->udp_spec;
		item->mask = &p->udp_mask;
	} else {
		item->type = RTE_FLOW_ITEM_TYPE_END;
	}
}

/* The RSS types of spec: its protocol's IPv4 type with the source-only or destination-only
 * modifiers. */
static uint64_t flow_rss_types(const struct vipmux_flow_spec *spec)
{
	uint64_t base = spec->proto == IPPROTO_TCP   ? RTE_ETH_RSS_NONFRAG_IPV4_TCP
			: spec->proto == IPPROTO_UDP ? RTE_ETH_RSS_NONFRAG_IPV4_UDP
						     : RTE_ETH_RSS_IPV4;
	if (spec->hash == 1)
		return base | RTE_ETH_RSS_L3_SRC_ONLY | RTE_ETH_RSS_L4_SRC_ONLY;
	return base | RTE_ETH_RSS_L3_DST_ONLY | RTE_ETH_RSS_L4_DST_ONLY;
}

/* The attributes, pattern and actions of spec into *p. */
static void flow_build(const struct vipmux_flow_spec *spec, struct flow_parts *p)
{
	memset(p, 0, sizeof(*p));
	p->attr.ingress = 1;
	p->attr.priority = spec->priority;
	p->ip_spec.hdr.src_addr = rte_cpu_to_be_32(spec->src);
	p->ip_spec.hdr.dst_addr = rte_cpu_to_be_32(spec->dst);
	p->ip_mask.hdr.src_addr = rte_cpu_to_be_32(spec->src_mask);
	p->ip_mask.hdr.dst_addr = rte_cpu_to_be_32(spec->dst_mask);
	if (spec->proto != 0) {
		p->ip_spec.hdr.next_proto_id = spec->proto;
		p->ip_mask.hdr.next_proto_id = 0xff;
	}
	p->pattern[0].type = RTE_FLOW_ITEM_TYPE_ETH;
	p->pattern[1].type = RTE_FLOW_ITEM_TYPE_IPV4;
	p->pattern[1].spec = &p->ip_spec;
	p->pattern[1].mask = &p->ip_mask;
	flow_l4(spec, p, &p->pattern[2]);
	p->pattern[3].type = RTE_FLOW_ITEM_TYPE_END;
	if (spec->hash == 0) {
		p->queue.index = spec->queue;
		p->actions[0].type = RTE_FLOW_ACTION_TYPE_QUEUE;
		p->actions[0].conf = &p->queue;
	} else {
		p->rss.func = RTE_ETH_HASH_FUNCTION_TOEPLITZ;
		p->rss.level = 0;
		p->rss.types = flow_rss_types(spec);
		p->rss.key = spec->key;
		p->rss.key_len = spec->key_len;
		p->rss.queue = spec->queues;
		p->rss.queue_num = spec->queue_num;
		p->actions[0].type = RTE_FLOW_ACTION_TYPE_RSS;
		p->actions[0].conf = &p->rss;
	}
	p->actions[1].type = RTE_FLOW_ACTION_TYPE_END;
}

int vipmux_flow_validate(uint16_t port, const struct vipmux_flow_spec *spec, char *msg, size_t len)
{
	struct flow_parts p;
	struct rte_flow_error err = {0};
	int ret;

	flow_build(spec, &p);
	ret = rte_flow_validate(port, &p.attr, p.pattern, p.actions, &err);
	if (ret != 0)
		flow_message(&err, msg, len);
	return ret;
}

struct rte_flow *vipmux_flow_create(uint16_t port, const struct vipmux_flow_spec *spec, char *msg,
				    size_t len)
{
	struct flow_parts p;
	struct rte_flow_error err = {0};
	struct rte_flow *flow;

	flow_build(spec, &p);
	flow = rte_flow_create(port, &p.attr, p.pattern, p.actions, &err);
	if (flow == NULL)
		flow_message(&err, msg, len);
	return flow;
}

int vipmux_flow_destroy(uint16_t port, struct rte_flow *flow, char *msg, size_t len)
{
	struct rte_flow_error err = {0};
	int ret = rte_flow_destroy(port, flow, &err);

	if (ret != 0)
		flow_message(&err, msg, len);
	return ret;
}

int vipmux_flow_flush(uint16_t port, char *msg, size_t len)
{
	struct rte_flow_error err = {0};
	int ret = rte_flow_flush(port, &err);

	if (ret != 0)
		flow_message(&err, msg, len);
	return ret;
}

/*
 * DPDK 22.11's memif driver tears a connection down from the EAL interrupt thread (the peer
 * closed the control socket): it clears its connected flag, takes the control-channel lock, and
 * after releasing it unmaps the shared regions, while a worker may still be inside an rx or tx
 * burst on the rings it unmaps (a segmentation fault). Holding that lock keeps the interrupt
 * thread from getting past it, so the caller can first take every worker out of the device
 * (docs/design.md section 5.1). The lock sits in driver-private structures no installed header
 * describes; the declarations below give the leading fields of the three of 22.11 that lead to
 * it (struct rte_eth_dev, struct rte_eth_dev_data, the memif driver's pmd_internals), and the
 * lookup is refused unless the DPDK version is 22.11, the driver is net_memif, the device data
 * found carries the port's own name, and the role field holds a valid role.
 */
struct vipmux_eth_dev_head {
	void *burst_functions[6];
	void *data;
	void *process_private;
	const void *dev_ops;
	void *device;
	void *intr_handle;
	void *link_intr_callbacks[2];
	void *post_rx_burst_callbacks[RTE_MAX_QUEUES_PER_PORT];
	void *pre_tx_burst_callbacks[RTE_MAX_QUEUES_PER_PORT];
	int state;
	void *security_ctx;
} __rte_cache_aligned;

struct vipmux_eth_dev_data_head {
	char name[RTE_ETH_NAME_MAX_LEN];
	void **rx_queues;
	void **tx_queues;
	uint16_t nb_rx_queues;
	uint16_t nb_tx_queues;
	uint8_t sriov_active;
	uint8_t sriov_nb_q_per_pool;
	uint16_t sriov_def_vmdq_idx;
	uint16_t sriov_def_pool_q_idx;
	void *dev_private;
};

struct vipmux_memif_private_head {
	uint32_t id;
	int role; /* 0 server, 1 client */
	uint32_t flags;
	char *socket_filename;
	char secret[24];
	void *control_channel;
	rte_spinlock_t control_channel_lock;
};

/* The ethdev library's device array (declared by its driver header, which is not installed). */
extern struct vipmux_eth_dev_head rte_eth_devices[];

void *vipmux_memif_teardown_lock(uint16_t port, int *client, int *zero_copy)
{
	struct rte_eth_dev_info info;
	char name[RTE_ETH_NAME_MAX_LEN];
	struct vipmux_eth_dev_data_head *data;
	struct vipmux_memif_private_head *pmd;

	if (strncmp(rte_version(), "DPDK 22.11", 10) != 0 || port >= RTE_MAX_ETHPORTS)
		return NULL;
	if (rte_eth_dev_info_get(port, &info) != 0 || info.driver_name == NULL ||
	    strcmp(info.driver_name, "net_memif") != 0)
		return NULL;
	if (rte_eth_dev_get_name_by_port(port, name) != 0)
		return NULL;
	data = rte_eth_devices[port].data;
	if (data == NULL || strncmp(data->name, name, sizeof(name)) != 0)
		return NULL;
	pmd = data->dev_private;
	if (pmd == NULL || (pmd->role != 0 && pmd->role != 1))
		return NULL;
	*client = pmd->role;
	*zero_copy = (pmd->flags & (1u << 2)) != 0; /* ETH_MEMIF_FLAG_ZERO_COPY */
	return &pmd->control_channel_lock;
}

int vipmux_teardown_lock_try(void *lock) { return rte_spinlock_trylock(lock); }
void vipmux_teardown_lock_release(void *lock) { rte_spinlock_unlock(lock); }
