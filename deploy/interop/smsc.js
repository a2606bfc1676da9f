// An SMSC built on the npm smpp package (node-smpp), driven by the SMS
// interop tests (smpp/interop_test.go). It listens on 127.0.0.1 at a free
// port and speaks JSON lines: events on stdout, commands on stdin.
//
// Events:  {"event":"listening","port":N}
//          {"event":"bind","system_id":..}
//          {"event":"submit","seq":..,"source":..,"dest":..,"data_coding":..,
//           "esm_class":..,"registered_delivery":..,"text":..,"udh":["hex",..],
//           "status":..,"message_id":..}   (status 0 = accepted; -1 = held)
//          {"event":"mo_done","id":..,"statuses":[..]}
//          {"event":"dropped","pending":N}
//          {"event":"receipt_resp","message_id":..,"status":..}
// Commands: {"cmd":"mode","throttle_every":N,"early_receipts":bool,"drop_at_pending":N}
//           {"cmd":"mo","id":..,"source":"+1..","dest":"+1..","text":..,
//            "ref":N,"units":67,"order":[2,3,1]}   16-bit UDH, UCS-2
'use strict';

const smpp = require('smpp');
const readline = require('readline');

let mode = { throttle_every: 0, early_receipts: false, drop_at_pending: 0 };
let submits = 0;
let nextId = 0x5A0000;
const sessions = new Set();

function emit(obj) {
	process.stdout.write(JSON.stringify(obj) + '\n');
}

function stateOf(stat) {
	return { DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, REJECTD: 8 }[stat] || 7;
}

function sendReceipt(session, pdu, id) {
	const now = new Date();
	const ymd = now.toISOString().replace(/[-:T]/g, '').slice(2, 12);
	const text = 'id:' + id + ' sub:001 dlvrd:001 submit date:' + ymd +
		' done date:' + ymd + ' stat:DELIVRD err:000 text:';
	session.deliver_sm({
		source_addr_ton: pdu.dest_addr_ton,
		source_addr_npi: pdu.dest_addr_npi,
		source_addr: pdu.destination_addr,
		dest_addr_ton: pdu.source_addr_ton,
		dest_addr_npi: pdu.source_addr_npi,
		destination_addr: pdu.source_addr,
		esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
		data_coding: 0x01,
		short_message: Buffer.from(text, 'ascii'),
		receipted_message_id: id,
		message_state: stateOf('DELIVRD'),
	}, function (resp) {
		emit({ event: 'receipt_resp', message_id: id, status: resp.command_status });
	});
}

function onSession(session) {
	sessions.add(session);
	let pending = [];
	session.on('error', function () { /* the peer went away */ });
	session.on('close', function () { sessions.delete(session); });
	const bind = function (pdu) {
		emit({ event: 'bind', system_id: pdu.system_id });
		session.send(pdu.response({ system_id: 'node-smpp' }));
	};
	session.on('bind_transceiver', bind);
	session.on('bind_transmitter', bind);
	session.on('bind_receiver', bind);
	session.on('enquire_link', function (pdu) { session.send(pdu.response()); });
	session.on('unbind', function (pdu) {
		session.send(pdu.response());
		session.close();
	});
	session.on('submit_sm', function (pdu) {
		submits++;
		const sm = pdu.short_message || {};
		const ev = {
			event: 'submit', seq: pdu.sequence_number,
			source: pdu.source_addr, dest: pdu.destination_addr,
			data_coding: pdu.data_coding, esm_class: pdu.esm_class,
			registered_delivery: pdu.registered_delivery,
			text: typeof sm.message === 'string' ? sm.message : null,
			udh: (sm.udh || []).map(function (b) { return b.toString('hex'); }),
		};
		if (mode.drop_at_pending > 0) {
			// Hold the answers; when the window is full, drop the link.
			ev.status = -1;
			emit(ev);
			pending.push(pdu);
			if (pending.length >= mode.drop_at_pending) {
				emit({ event: 'dropped', pending: pending.length });
				mode.drop_at_pending = 0;
				pending = [];
				session.destroy();
			}
			return;
		}
		if (mode.throttle_every > 0 && submits % mode.throttle_every === 0) {
			ev.status = smpp.ESME_RTHROTTLED;
			emit(ev);
			session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
			return;
		}
		const id = (nextId++).toString(16).toUpperCase();
		ev.status = 0;
		ev.message_id = id;
		emit(ev);
		if (mode.early_receipts && pdu.registered_delivery) {
			sendReceipt(session, pdu, id);
		}
		session.send(pdu.response({ message_id: id }));
	});
}

// split cuts text into parts of at most units UTF-16 code units, never
// between the two halves of a surrogate pair.
function split(text, units) {
	const parts = [];
	let cur = '';
	for (const ch of text) {
		if (cur.length + ch.length > units) {
			parts.push(cur);
			cur = '';
		}
		cur += ch;
	}
	if (cur) parts.push(cur);
	return parts;
}

function injectMO(cmd) {
	const session = Array.from(sessions)[0];
	if (!session) {
		emit({ event: 'mo_done', id: cmd.id, error: 'no session' });
		return;
	}
	const parts = split(cmd.text, cmd.units || 67);
	const order = cmd.order || parts.map(function (_, i) { return i + 1; });
	const statuses = new Array(order.length);
	let left = order.length;
	order.forEach(function (n, i) {
		const udh = Buffer.from([0x06, 0x08, 0x04, (cmd.ref >> 8) & 0xff, cmd.ref & 0xff, parts.length, n]);
		session.deliver_sm({
			source_addr_ton: 1, source_addr_npi: 1, source_addr: cmd.source.replace(/^\+/, ''),
			dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: cmd.dest.replace(/^\+/, ''),
			data_coding: 0x08,
			short_message: { udh: udh, message: parts[n - 1] },
		}, function (resp) {
			statuses[i] = resp.command_status;
			if (--left === 0) {
				emit({ event: 'mo_done', id: cmd.id, parts: parts.length, statuses: statuses });
			}
		});
	});
}

const server = smpp.createServer(onSession);
server.listen(0, '127.0.0.1', function () {
	emit({ event: 'listening', port: server.address().port });
});

readline.createInterface({ input: process.stdin }).on('line', function (line) {
	let cmd;
	try {
		cmd = JSON.parse(line);
	} catch (e) {
		emit({ event: 'error', error: 'bad command: ' + e.message });
		return;
	}
	if (cmd.cmd === 'mode') {
		mode = Object.assign(mode, cmd);
		submits = 0;
		emit({ event: 'mode', mode: mode });
	} else if (cmd.cmd === 'mo') {
		injectMO(cmd);
	} else {
		emit({ event: 'error', error: 'unknown command ' + cmd.cmd });
	}
}).on('close', function () {
	server.close();
	sessions.forEach(function (s) { s.destroy(); });
	process.exit(0);
});
