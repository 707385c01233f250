//! The numbers of `linux/netfilter/nf_tables.h` (and friends) that netlink-packet-netfilter
//! does not name: attributes of the expressions it does not model (nat, masq, redir, ct, fib,
//! counter), attribute numbers of the expressions it does model as far as our readable dump
//! (`nft --debug=netlink` style) needs them, verdict codes, set flags and nftnl's userdata
//! TLVs, and what the iptables-nft reader and writer (`firewall::iptables`, which build and
//! read rules byte for byte) need besides. Encoding ([`super::expr`], [`super::socket`]),
//! decoding ([`super::decode`]) and that reader and writer share them. What upstream lacks is
//! worth offering there (issue 18 finding 1).

// Verdict codes (`NF_DROP`, `NF_ACCEPT`, `enum nft_verdicts`).
pub(crate) const NF_DROP: u32 = 0;
pub(crate) const NF_ACCEPT: u32 = 1;
pub(crate) const NFT_CONTINUE: u32 = 0xffff_ffff;
pub(crate) const NFT_JUMP: u32 = 0xffff_fffd;
pub(crate) const NFT_GOTO: u32 = 0xffff_fffc;
pub(crate) const NFT_RETURN: u32 = 0xffff_fffb;

// `NFPROTO_*` numbers of the nat family attribute and the `meta nfproto` dependency.
pub(crate) const NFPROTO_IPV4: u8 = 2;
pub(crate) const NFPROTO_IPV6: u8 = 10;

// `ETH_P_*`: the ether type a bridge or netdev table matches before an IP header.
pub(crate) const ETH_P_IP: u16 = 0x0800;
pub(crate) const ETH_P_IPV6: u16 = 0x86dd;

// `enum nft_payload_bases`.
pub(crate) const NFT_PAYLOAD_LL: u32 = 0;
pub(crate) const NFT_PAYLOAD_NETWORK: u32 = 1;
pub(crate) const NFT_PAYLOAD_TRANSPORT: u32 = 2;

/// `NFT_SET_ANONYMOUS`: an anonymous set (listings skip them).
pub(crate) const NFT_SET_ANONYMOUS: u32 = 0x1;
/// `NFT_SET_MAP`: the set is a map.
pub(crate) const NFT_SET_MAP: u32 = 0x8;
/// `NFT_DATA_VERDICT`: the data type of a verdict map.
pub(crate) const NFT_DATA_VERDICT: u32 = 0xffff_ff00;
/// `NFT_LOOKUP_F_INV`: a negated lookup.
pub(crate) const NFT_LOOKUP_F_INV: u32 = 0x1;

/// nftnl userdata TLV types: the comment of tables, chains, rules and elements
/// (`NFTNL_UDATA_*_COMMENT`), and a set's key / data byte order and comment
/// (`NFTNL_UDATA_SET_*`).
pub(crate) const UDATA_COMMENT: u8 = 0;
pub(crate) const UDATA_SET_KEYBYTEORDER: u8 = 0;
pub(crate) const UDATA_SET_DATABYTEORDER: u8 = 1;
pub(crate) const UDATA_SET_COMMENT: u8 = 7;
/// nft's byte order values for those TLVs (`enum byteorder`).
pub(crate) const BYTEORDER_HOST: u32 = 1;
pub(crate) const BYTEORDER_BIG_ENDIAN: u32 = 2;

// `NFTA_LIST_ELEM`, `NFTA_EXPR_*`: a rule's expression list.
pub(crate) const NFTA_LIST_ELEM: u16 = 1;
pub(crate) const NFTA_EXPR_NAME: u16 = 1;
pub(crate) const NFTA_EXPR_DATA: u16 = 2;

// payload
pub(crate) const NFTA_PAYLOAD_DREG: u16 = 1;
pub(crate) const NFTA_PAYLOAD_BASE: u16 = 2;
pub(crate) const NFTA_PAYLOAD_OFFSET: u16 = 3;
pub(crate) const NFTA_PAYLOAD_LEN: u16 = 4;

// meta (and `enum nft_meta_keys` as far as the dump names them)
pub(crate) const NFTA_META_DREG: u16 = 1;
pub(crate) const NFTA_META_KEY: u16 = 2;
pub(crate) const NFTA_META_SREG: u16 = 3;
pub(crate) const NFT_META_LEN: u32 = 0;
pub(crate) const NFT_META_PROTOCOL: u32 = 1;
pub(crate) const NFT_META_MARK: u32 = 3;
pub(crate) const NFT_META_IIF: u32 = 4;
pub(crate) const NFT_META_OIF: u32 = 5;
pub(crate) const NFT_META_IIFNAME: u32 = 6;
pub(crate) const NFT_META_OIFNAME: u32 = 7;
pub(crate) const NFT_META_NFPROTO: u32 = 15;
pub(crate) const NFT_META_L4PROTO: u32 = 16;

// cmp (and `enum nft_cmp_ops`)
pub(crate) const NFTA_CMP_SREG: u16 = 1;
pub(crate) const NFTA_CMP_OP: u16 = 2;
pub(crate) const NFTA_CMP_DATA: u16 = 3;
pub(crate) const NFT_CMP_EQ: u32 = 0;
pub(crate) const NFT_CMP_NEQ: u32 = 1;
pub(crate) const NFT_CMP_LT: u32 = 2;
pub(crate) const NFT_CMP_LTE: u32 = 3;
pub(crate) const NFT_CMP_GT: u32 = 4;
pub(crate) const NFT_CMP_GTE: u32 = 5;

// bitwise
pub(crate) const NFTA_BITWISE_SREG: u16 = 1;
pub(crate) const NFTA_BITWISE_DREG: u16 = 2;
pub(crate) const NFTA_BITWISE_LEN: u16 = 3;
pub(crate) const NFTA_BITWISE_MASK: u16 = 4;
pub(crate) const NFTA_BITWISE_XOR: u16 = 5;
pub(crate) const NFTA_BITWISE_OP: u16 = 6;

// immediate
pub(crate) const NFTA_IMMEDIATE_DREG: u16 = 1;
pub(crate) const NFTA_IMMEDIATE_DATA: u16 = 2;

// `NFTA_DATA_*`, `NFTA_VERDICT_*`: an immediate's value or verdict.
pub(crate) const NFTA_DATA_VALUE: u16 = 1;
pub(crate) const NFTA_DATA_VERDICT: u16 = 2;
pub(crate) const NFTA_VERDICT_CODE: u16 = 1;
pub(crate) const NFTA_VERDICT_CHAIN: u16 = 2;

// `enum nft_registers`: the verdict register and the first 16-byte one.
pub(crate) const NFT_REG_VERDICT: u32 = 0;
pub(crate) const NFT_REG_1: u32 = 1;

// xtables compat `match`/`target` (`NFTA_MATCH_*` and `NFTA_TARGET_*` share these numbers).
pub(crate) const NFTA_XT_NAME: u16 = 1;
pub(crate) const NFTA_XT_REV: u16 = 2;
pub(crate) const NFTA_XT_INFO: u16 = 3;

// Chain and rule messages, as the iptables-nft writer builds them by hand.
pub(crate) const NFT_MSG_NEWCHAIN: u16 = 3;
pub(crate) const NFT_MSG_DELCHAIN: u16 = 5;
pub(crate) const NFT_MSG_NEWRULE: u16 = 6;
pub(crate) const NFT_MSG_DELRULE: u16 = 8;
pub(crate) const NFTA_CHAIN_TABLE: u16 = 1;
pub(crate) const NFTA_CHAIN_NAME: u16 = 3;
pub(crate) const NFTA_RULE_TABLE: u16 = 1;
pub(crate) const NFTA_RULE_CHAIN: u16 = 2;
pub(crate) const NFTA_RULE_HANDLE: u16 = 3;
pub(crate) const NFTA_RULE_EXPRESSIONS: u16 = 4;
pub(crate) const NFTA_RULE_COMPAT: u16 = 5;
pub(crate) const NFTA_RULE_COMPAT_PROTO: u16 = 1;
pub(crate) const NFTA_RULE_COMPAT_FLAGS: u16 = 2;
/// `NFT_RULE_COMPAT_F_INV`: the compat protocol is negated (`! -p`).
pub(crate) const NFT_RULE_COMPAT_F_INV: u32 = 1 << 1;

// lookup
pub(crate) const NFTA_LOOKUP_SET: u16 = 1;
pub(crate) const NFTA_LOOKUP_SREG: u16 = 2;
pub(crate) const NFTA_LOOKUP_DREG: u16 = 3;
pub(crate) const NFTA_LOOKUP_FLAGS: u16 = 5;

// nat (and `enum nft_nat_types`)
pub(crate) const NFTA_NAT_TYPE: u16 = 1;
pub(crate) const NFTA_NAT_FAMILY: u16 = 2;
pub(crate) const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
pub(crate) const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
pub(crate) const NFT_NAT_SNAT: u32 = 0;
pub(crate) const NFT_NAT_DNAT: u32 = 1;

// fib (and `enum nft_fib_result`, `enum nft_fib_flags`)
pub(crate) const NFTA_FIB_DREG: u16 = 1;
pub(crate) const NFTA_FIB_RESULT: u16 = 2;
pub(crate) const NFTA_FIB_FLAGS: u16 = 3;
pub(crate) const NFT_FIB_RESULT_OIF: u32 = 1;
pub(crate) const NFT_FIB_RESULT_OIFNAME: u32 = 2;
pub(crate) const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
pub(crate) const NFTA_FIB_F_DADDR: u32 = 2;
/// `RTN_LOCAL`: the address type `fib daddr type local` compares with.
pub(crate) const RTN_LOCAL: u32 = 2;

// ct (and `enum nft_ct_keys`, `IPS_DST_NAT`)
pub(crate) const NFTA_CT_DREG: u16 = 1;
pub(crate) const NFTA_CT_KEY: u16 = 2;
pub(crate) const NFT_CT_STATE: u32 = 0;
pub(crate) const NFT_CT_STATUS: u32 = 2;
pub(crate) const NFT_CT_MARK: u32 = 3;
pub(crate) const IPS_DST_NAT: u32 = 1 << 5;

// counter
pub(crate) const NFTA_COUNTER_BYTES: u16 = 1;
pub(crate) const NFTA_COUNTER_PACKETS: u16 = 2;

// redir
pub(crate) const NFTA_REDIR_REG_PROTO_MIN: u16 = 1;
