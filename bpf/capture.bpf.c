// SPDX-License-Identifier: GPL-2.0
/*
 * Copies the IP and TCP headers of every TCP SYN into LRU hash maps keyed by the client's address and
 * port, so that a proxy on the node can fingerprint the SYN of a connection it accepts.
 *
 * Both programs only observe: every packet continues as if they were not there.
 *
 * Small and dumb on purpose: it locates the headers, applies the destination filter and the per-source
 * budget, and copies bytes. Everything else (decoding, staleness, the budget's numbers) is user space.
 * The layouts below are defined once in shared/ebpf_abi.ts; tests/ebpf_abi_matches_btf.test.ts fails
 * when this file disagrees with it.
 *
 * Byte order: fields copied from the packet (addresses, ports) keep network byte order; numbers this
 * program computes (capture time, copied length, budgets) or is given (the budget settings) are in host
 * byte order.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* The largest IPv4 header (60 bytes) plus the largest TCP header (60 bytes). */
#define SYN_PACKET_MAX 120
/* Overridden from user space before load (HUGINN_EBPF_SYN_MAP_MAX_ENTRIES). */
#define SYN_MAP_DEFAULT_ENTRIES 8192
/* Sources whose SYN budget is tracked at once; beyond, the least recently seen start afresh. */
#define SYN_BUDGET_ENTRIES 8192
/* More fragments flag and fragment offset of the IPv4 frag_off field (kernel-internal names). */
#define IP_MF_OR_OFFSET 0x3fff

struct syn_key_v4 {
	__u32 addr; /* source address, network order */
	__u16 port; /* source port, network order */
	__u16 pad;  /* always zero: hashed as part of the key */
};

struct syn_key_v6 {
	__u32 addr[4];
	__u16 port;
	__u16 pad;
};

struct syn_value {
	__u64 captured_ns;  /* bpf_ktime_get_boot_ns(), host order */
	__u16 dst_port;     /* network order */
	__u16 packet_len;   /* bytes used in packet[], host order */
	__u8 packet[SYN_PACKET_MAX];
	__u8 pad[4];
};

/*
 * Which SYNs are recorded: the destination (all-zero fields match anything) and the per-source budget
 * (budget_syns 0 = no budget). Set from user space before load.
 */
struct capture_filter {
	__u32 dst_v6[4];
	__u32 dst_v4;
	__u16 dst_port;
	__u16 pad;
	__u32 budget_syns;      /* SYNs recorded per source address and window */
	__u32 budget_window_ms; /* length of a window */
};

/* A source address for its budget: IPv6, or IPv4 as ::ffff:a.b.c.d, so one map holds both. */
struct syn_budget_key {
	__u32 addr[4];
};

struct syn_budget_value {
	__u64 window_start_ns; /* bpf_ktime_get_boot_ns() of the window's first SYN */
	__u64 syns;            /* SYNs of this window that passed the budget check */
};

/* Index into syn_counters: a family's base plus the kind of event. */
enum counter_kind { CAPTURED, MALFORMED, INSERT_FAILED, RATE_LIMITED, COUNTER_KINDS };
enum counter_family { FAMILY_V4 = 0, FAMILY_V6 = COUNTER_KINDS, COUNTER_COUNT = 2 * COUNTER_KINDS };

/* A VLAN tag as it follows the Ethernet source address (uapi has no struct for it). */
struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

const volatile struct capture_filter filter = {};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SYN_MAP_DEFAULT_ENTRIES);
	__type(key, struct syn_key_v4);
	__type(value, struct syn_value);
} syn_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SYN_MAP_DEFAULT_ENTRIES);
	__type(key, struct syn_key_v6);
	__type(value, struct syn_value);
} syn_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SYN_BUDGET_ENTRIES);
	__type(key, struct syn_budget_key);
	__type(value, struct syn_budget_value);
} syn_budget SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} syn_counters SEC(".maps");

static __always_inline void count(enum counter_family family, enum counter_kind kind)
{
	__u32 index = family + kind;
	__u64 *counter = bpf_map_lookup_elem(&syn_counters, &index);

	/* Per-CPU slot: no other CPU writes it, so a plain increment is exact. */
	if (counter)
		*counter += 1;
}

static __always_inline int is_wanted_syn(const struct tcphdr *tcp)
{
	return tcp->syn && !tcp->ack && (!filter.dst_port || tcp->dest == filter.dst_port);
}

/*
 * Whether this SYN exceeds its source's budget for the current window (counted as rate limited), else
 * takes one from the budget. A SYN over budget is only not recorded: the packet always passes.
 *
 * The check and the increment are separate steps (a fetching atomic would need kernel 5.12), so SYNs
 * of one source handled on several CPUs at the same instant may overshoot the budget by one per CPU.
 */
static __always_inline int over_budget(enum counter_family family, const struct syn_budget_key *source)
{
	if (!filter.budget_syns)
		return 0;

	__u64 now = bpf_ktime_get_boot_ns();
	struct syn_budget_value *budget = bpf_map_lookup_elem(&syn_budget, source);

	if (!budget) {
		struct syn_budget_value fresh = { .window_start_ns = now, .syns = 1 };

		/* When the source cannot be tracked, its SYN is recorded: failing open loses no honest SYN. */
		bpf_map_update_elem(&syn_budget, source, &fresh, BPF_NOEXIST);
		return 0;
	}
	if (now - budget->window_start_ns >= filter.budget_window_ms * 1000000ULL) {
		/* In place: an update takes a fresh node from the LRU, which may evict another source. */
		budget->window_start_ns = now;
		budget->syns = 1;
		return 0;
	}
	if (budget->syns >= filter.budget_syns) {
		count(family, RATE_LIMITED);
		return 1;
	}
	__sync_fetch_and_add(&budget->syns, 1);
	return 0;
}

/*
 * Fills the value and inserts it. The caller has checked that len bytes from ip are inside the packet,
 * but the verifier cannot relate len to that check, hence the per-byte bound.
 */
static __always_inline void record(void *map, const void *key, enum counter_family family,
				   const __u8 *ip, __u32 len, const void *end, __be16 dst_port)
{
	struct syn_value value = {};

	value.captured_ns = bpf_ktime_get_boot_ns();
	value.dst_port = dst_port;
	for (__u32 i = 0; i < SYN_PACKET_MAX && i < len; i++) {
		if (ip + i + 1 > (const __u8 *)end)
			break;
		value.packet[i] = ip[i];
		value.packet_len = i + 1;
	}
	if (bpf_map_update_elem(map, key, &value, BPF_ANY)) {
		count(family, INSERT_FAILED);
		return;
	}
	count(family, CAPTURED);
}

static __always_inline void capture_v4(struct iphdr *ip, void *end)
{
	if ((void *)(ip + 1) > end) {
		count(FAMILY_V4, MALFORMED);
		return;
	}
	if (ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(IP_MF_OR_OFFSET)))
		return;
	if (filter.dst_v4 && ip->daddr != filter.dst_v4)
		return;

	__u32 ip_len = ip->ihl * 4;
	struct tcphdr *tcp = (void *)ip + ip_len;

	if (ip_len < sizeof(*ip) || (void *)(tcp + 1) > end) {
		count(FAMILY_V4, MALFORMED);
		return;
	}
	if (!is_wanted_syn(tcp))
		return;

	__u32 tcp_len = tcp->doff * 4;

	if (tcp_len < sizeof(*tcp) || (void *)tcp + tcp_len > end) {
		count(FAMILY_V4, MALFORMED);
		return;
	}

	struct syn_budget_key source = { .addr = { 0, 0, bpf_htonl(0xffff), ip->saddr } };

	if (over_budget(FAMILY_V4, &source))
		return;

	struct syn_key_v4 key = { .addr = ip->saddr, .port = tcp->source };

	record(&syn_v4, &key, FAMILY_V4, (const __u8 *)ip, ip_len + tcp_len, end, tcp->dest);
}

static __always_inline void capture_v6(struct ipv6hdr *ip, void *end)
{
	if ((void *)(ip + 1) > end) {
		count(FAMILY_V6, MALFORMED);
		return;
	}
	/* Extension headers are not walked: p0f gives no signature for such SYNs either. */
	if (ip->nexthdr != IPPROTO_TCP)
		return;

	const __u32 *daddr = ip->daddr.in6_u.u6_addr32;

	if ((filter.dst_v6[0] | filter.dst_v6[1] | filter.dst_v6[2] | filter.dst_v6[3]) &&
	    (daddr[0] != filter.dst_v6[0] || daddr[1] != filter.dst_v6[1] || daddr[2] != filter.dst_v6[2] ||
	     daddr[3] != filter.dst_v6[3]))
		return;

	struct tcphdr *tcp = (void *)(ip + 1);

	if ((void *)(tcp + 1) > end) {
		count(FAMILY_V6, MALFORMED);
		return;
	}
	if (!is_wanted_syn(tcp))
		return;

	__u32 tcp_len = tcp->doff * 4;

	if (tcp_len < sizeof(*tcp) || (void *)tcp + tcp_len > end) {
		count(FAMILY_V6, MALFORMED);
		return;
	}

	const __u32 *saddr = ip->saddr.in6_u.u6_addr32;
	struct syn_budget_key source = { .addr = { saddr[0], saddr[1], saddr[2], saddr[3] } };

	if (over_budget(FAMILY_V6, &source))
		return;

	struct syn_key_v6 key = {
		.addr = { saddr[0], saddr[1], saddr[2], saddr[3] },
		.port = tcp->source,
	};

	record(&syn_v6, &key, FAMILY_V6, (const __u8 *)ip, sizeof(*ip) + tcp_len, end, tcp->dest);
}

/* The one capture routine: Ethernet, up to two VLAN tags (802.1Q or 802.1ad), then IPv4 or IPv6. */
static __always_inline void capture(void *data, void *end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return;

	__be16 proto = eth->h_proto;
	void *l3 = eth + 1;

#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;

		struct vlan_tag *tag = l3;

		if ((void *)(tag + 1) > end)
			return;
		proto = tag->proto;
		l3 = tag + 1;
	}

	if (proto == bpf_htons(ETH_P_IP))
		capture_v4(l3, end);
	else if (proto == bpf_htons(ETH_P_IPV6))
		capture_v6(l3, end);
}

SEC("xdp")
int capture_xdp(struct xdp_md *ctx)
{
	capture((void *)(long)ctx->data, (void *)(long)ctx->data_end);
	return XDP_PASS;
}

/*
 * TC_ACT_UNSPEC, not TC_ACT_OK: OK would end classification and skip the filters after this one (a CNI's
 * own tc program, for instance); UNSPEC lets the chain continue and otherwise passes the packet.
 */
SEC("tc")
int capture_tc(struct __sk_buff *skb)
{
	capture((void *)(long)skb->data, (void *)(long)skb->data_end);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
