// Status Report

// Counts HTTP responses by status code and DNS answers by response code. Every minute a job writes
// the counts so far to reports/status.json in the data folder (file.write) and prints one line;
// onJobFailed says when writing failed.

var REPORT_DIR = "reports";
var items = 0;
var httpByStatus = {};
var dnsByCode = {};

file.mkdir(REPORT_DIR);

function onItemCaptured(data) {
  items++;
  if (!data.response) return;
  // an unanswered request has a response too, with status 0 (HTTP) or code "" (DNS): not counted
  if (data.protocol.name === "http" && data.response.status) {
    var status = String(data.response.status);
    httpByStatus[status] = (httpByStatus[status] || 0) + 1;
  } else if (data.protocol.name === "dns" && data.response.code) {
    dnsByCode[data.response.code] = (dnsByCode[data.response.code] || 0) + 1;
  }
}

function writeReport() {
  var report = {
    node: utils.nodeName(),
    written: new Date().toISOString(),
    items: items,
    httpByStatus: httpByStatus,
    dnsByCode: dnsByCode
  };
  file.write(REPORT_DIR + "/status.json", JSON.stringify(report, null, 2));
  console.log("wrote " + REPORT_DIR + "/status.json:", items, "items, HTTP", JSON.stringify(httpByStatus));
}

function onJobFailed(tag, cron, limit, error) {
  if (tag === "status-report") console.error("status report not written:", error);
}

jobs.schedule("status-report", "0 * * * * *", writeReport);
