/**
 * A full set of fingerprint headers of a Chrome-like HTTP/2 client (~1.3 KB), for benchmarks of what the
 * proxy does with them per request: the raw JA4/JA3 forms are long, which is what checking them pays for.
 *
 * @module
 */
export const FINGERPRINT_HEADERS: Array<[string, string]> = [
  ["x-tls-ja4", "t13d1715h2_5b57614c22b0_3cbfd9057e0d"],
  ["x-tls-ja4-r", `t13d1715h2_${"002f,0035,009c,009d,".repeat(4)}1301_${"0005,000a,000b,".repeat(5)}0403`],
  ["x-tls-ja4-o", "t13d1715h2_5b57614c22b0_0c0ab9d9d5f6"],
  ["x-tls-ja4-or", `t13d1715h2_${"1301,1303,1302,".repeat(5)}c02b_${"0000,0017,ff01,".repeat(5)}0403`],
  ["x-tls-ja4-s1", "t13d1715h2_5b57614c22b0_3cbfd9057e0d"],
  ["x-tls-ja4-s1r", `t13d1715h2_${"002f,0035,".repeat(8)}1301_${"000a,000b,".repeat(8)}0403`],
  ["x-tls-ja3", `771,${"4865-4867-4866-".repeat(5)}49195,${"0-23-65281-".repeat(6)}10,29-23-24,0`],
  ["x-tls-ja3-hash", "b5001237acdf006056b409cc433726b0"],
  ["x-http2-akamai", "1:65536;2:0;4:131072;5:16384|12517377|0|m,p,a,s"],
];
