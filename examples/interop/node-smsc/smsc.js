// An SMSC built on node-smpp (https://github.com/farhadi/node-smpp), an
// SMPP implementation independent of smppd, for examples/interop/run.sh.
//
// It binds its accounts, answers submit_sm with its own message ids
// (upper-case hex), sends a delivery receipt for each (SMPP 3.4 appendix B
// text plus the receipted_message_id and message_state TLVs), answers
// enquire_link and unbind, and after the first transceiver bind sends
// three MO messages: a plain one, one split in two parts with a UDH, and
// one split in two parts with the SAR TLVs. With a certificate and key it
// speaks SMPP over TLS (node-smpp's own TLS server). On SIGTERM (or
// SIGINT) it prints what it saw as one JSON line and exits.
//
//   node smsc.js PORT SYSTEM_ID:PASSWORD[,SYSTEM_ID:PASSWORD...] [CERT.pem KEY.pem]
'use strict';
const fs = require('fs');
const smpp = require('smpp');

const [port, accountList, certFile, keyFile] = process.argv.slice(2);
const accounts = new Map((accountList || '').split(',').filter(Boolean)
  .map((a) => a.split(':')));
if (!port || accounts.size === 0 || [...accounts.values()].some((p) => p === undefined)) {
  console.error('usage: node smsc.js PORT SYSTEM_ID:PASSWORD[,...] [CERT.pem KEY.pem]');
  process.exit(2);
}
const tls = certFile && keyFile
  ? { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }
  : null;

const seen = {
  binds: 0, refused_binds: 0, submits: 0, submit_parts_with_udh: 0,
  ucs2_submits: 0, submit_parts_with_sar: 0, submit_payloads: 0, payload_octets: 0,
  receipts_sent: 0, receipts_acked: 0, mo_sent: 0,
  mo_acked: 0, enquire_links: 0, unbinds: 0, generic_nacks: 0, errors: 0,
};
let nextId = 0xA000;
let moSent = false;

function stamp(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function sendMo(session) {
  const base = { source_addr: '4915112345678', destination_addr: '12345', esm_class: 0 };
  const deliver = (options) => {
    seen.mo_sent += 1;
    session.deliver_sm(Object.assign({}, base, options), (resp) => {
      if (resp.command_status === 0) seen.mo_acked += 1;
    });
  };
  deliver({ short_message: 'plain MO from node' });
  // Two parts with an 8-bit concatenation UDH (reference 0x42), second first.
  const udh = (seq) => Buffer.from([0x05, 0x00, 0x03, 0x42, 0x02, seq]);
  deliver({ short_message: { udh: udh(2), message: ' second half (UDH)' } });
  deliver({ short_message: { udh: udh(1), message: 'first half,' } });
  // Two parts marked by the SAR TLVs (16-bit reference 0x1234).
  deliver({ short_message: 'sar one,', sar_msg_ref_num: 0x1234, sar_total_segments: 2, sar_segment_seqnum: 1 });
  deliver({ short_message: ' sar two', sar_msg_ref_num: 0x1234, sar_total_segments: 2, sar_segment_seqnum: 2 });
}

const onSession = (session) => {
  session.on('error', () => { seen.errors += 1; });
  const onBind = (kind) => (pdu) => {
    if (accounts.get(pdu.system_id) !== pdu.password) {
      seen.refused_binds += 1;
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      session.close();
      return;
    }
    seen.binds += 1;
    session.send(pdu.response({ system_id: 'nodesmsc' }));
    if (kind === 'transceiver' && !moSent) {
      moSent = true;
      setTimeout(() => sendMo(session), 200);
    }
  };
  session.on('bind_transceiver', onBind('transceiver'));
  session.on('bind_transmitter', onBind('transmitter'));
  session.on('bind_receiver', onBind('receiver'));
  session.on('enquire_link', (pdu) => {
    seen.enquire_links += 1;
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    seen.unbinds += 1;
    session.send(pdu.response());
    session.close();
  });
  session.on('generic_nack', () => { seen.generic_nacks += 1; });
  session.on('submit_sm', (pdu) => {
    seen.submits += 1;
    if (pdu.esm_class & 0x40) seen.submit_parts_with_udh += 1;
    if (pdu.data_coding === 0x08) seen.ucs2_submits += 1;
    if (pdu.sar_msg_ref_num !== undefined && pdu.sar_total_segments > 1) {
      seen.submit_parts_with_sar += 1;
    }
    if (pdu.message_payload !== undefined) {
      seen.submit_payloads += 1;
      const p = pdu.message_payload;
      const text = typeof p === 'string' ? p : (p && p.message !== undefined ? p.message : p);
      seen.payload_octets += text ? text.length : 0;
    }
    const id = (nextId++).toString(16).toUpperCase();
    session.send(pdu.response({ message_id: id }));
    if ((pdu.registered_delivery & 0x03) === 0) return;
    const now = stamp(new Date());
    setTimeout(() => {
      seen.receipts_sent += 1;
      session.deliver_sm({
        source_addr: pdu.destination_addr,
        destination_addr: pdu.source_addr,
        esm_class: 0x04,
        short_message: `id:${id} sub:001 dlvrd:001 submit date:${now} done date:${now} stat:DELIVRD err:000 text:`,
        receipted_message_id: id,
        message_state: 2,
      }, (resp) => {
        if (resp.command_status === 0) seen.receipts_acked += 1;
      });
    }, 50);
  });
};
const server = tls ? smpp.createServer(tls, onSession) : smpp.createServer(onSession);

server.listen(Number(port), '127.0.0.1', () => {
  console.error(`node SMSC listening on 127.0.0.1:${port}`);
});

const report = () => {
  console.log(JSON.stringify(seen));
  process.exit(0);
};
process.on('SIGTERM', report);
process.on('SIGINT', report);
