// KFL PCAP S3

// The seed script: every HTTP connection that answered 500 and every DNS flow are kept as gzipped
// PCAP repositories, one per query, with a JSON manifest. With S3_BUCKET (and S3_ENDPOINT for
// SeaweedFS/MinIO) set they are uploaded create-only to S3, else written to the local store in the
// data folder. Open a repository with Wireshark: it reads .pcap.gz directly.

var KFL_PCAP_S3_KFL_ARR = [
  "http and response.status == 500",
  "dns",
];
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: KFL_PCAP_S3_KFL_ARR });
}
