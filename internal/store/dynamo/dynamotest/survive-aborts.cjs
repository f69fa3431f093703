// Loaded into dynalite's node process (node --require) by dynamotest.
//
// dynalite 4.0.0 rethrows the 'error' of an incoming request
// (index.js: req.on('error', function (err) { throw err })), and Node 20
// emits one, "aborted" with code ECONNRESET, when a client closes its
// connection before the request's body has arrived: a broker stopping while a
// request is under way. The throw would end the process, and with it every
// table of the test. That request is dead anyway; the server carries on.
process.on('uncaughtException', function (err) {
  if (err && err.code === 'ECONNRESET') {
    return
  }
  console.error(err)
  process.exit(1)
})
