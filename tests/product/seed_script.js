var KFL_PCAP_S3_KFL_ARR = [
  "http and response.status == 500",
  "dns",
];
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: KFL_PCAP_S3_KFL_ARR });
}
