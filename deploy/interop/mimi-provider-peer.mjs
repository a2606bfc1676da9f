// mimi-provider-peer.mjs plays a second MIMI provider, the provider of a
// desktop user, against the gateway's MIMI provider protocol
// (draft-ietf-mimi-protocol-06 over HTTPS with mutual TLS), for the
// gateway's interop tests. Its domain is desktop.test and its one user is
// alice, mimi://desktop.test/u/alice, whose MLS clients run on npm ts-mls.
// It is the hub of the rooms it creates (mimi://desktop.test/r/<name>) and
// talks to the gateway as a follower would expect a hub to; in rooms the
// gateway hosts it is a follower (alice's clients join by Welcome).
//
// It was written from the drafts, not from the gateway's Go code: every
// MIMI structure below is encoded and decoded here, by hand, so that the
// tests compare two readings of the specification. ts-mls handles the MLS
// objects themselves (MLSMessage, KeyPackage, Welcome, GroupInfo, ratchet
// tree, Capabilities); cborg handles CBOR for the MIMI content
// (draft-ietf-mimi-content-08) inside application messages.
//
// Protocol with the test: one JSON object per line on stdin, one JSON answer
// per line on stdout, in order; {"ok": true, ...} or {"ok": false, "error":
// "..."}. Binary values are base64, message IDs hex. Logs go to stderr.
//
//   {"op":"listen","cert","key","ca"}      HTTPS on 127.0.0.1, a random port,
//        client certificates required and checked against ca -> {"url"}.
//        Serves GET /.well-known/mimi-protocol-directory (templates on its
//        own URL), POST /v1/submitMessage/{roomId} and POST /v1/update/{roomId}
//        for its rooms, POST /v1/updateConsent/{requesterDomain} (a
//        grant's KeyPackages are kept for its room, as keyMaterial's are),
//        POST /v1/identifierQuery/desktop.test, POST
//        /v1/keyMaterial/{targetUser} and, from the hub of a room, POST
//        /v1/notify/{roomId}; the other endpoints answer 501.
//   {"op":"own","phone"} identifierQuery finds alice by phone (+E.164).
//   {"op":"clients","n","identity"?} alice has n clients (1 to 16,
//        default 1), mimi://desktop.test/d/alice/<1..n>, each with its own
//        signature key: a keyMaterial answer holds a fresh KeyPackage of
//        each, whose basic credential names alice, or "identity" when
//        given (a provider handing out someone else's name, for tests).
//   {"op":"peer","domain","url","cert","key","ca"}  how to reach a gateway:
//        connect to url's host:port, TLS server name and Host = domain,
//        From: mimi@desktop.test. Its directory is fetched on first use.
//   {"op":"identifierQuery","peer","phone"} -> {"code","uris","profiles"}
//   {"op":"keyMaterial","peer","target","room"} -> {"userStatus","userUri",
//        "clients":[{"status","uri"}]}; KeyPackages are kept for the room.
//        Both want 200 with application/octet-stream; anything else, or a
//        body that does not decode strictly, answers {"ok": false}.
//   {"op":"requestConsent","peer","target","room"?,"operation"?} asks the
//        target's provider for consent ("request", the default, or
//        "cancel") -> {"status"}
//   {"op":"consents"} every updateConsent received since the last call ->
//        {"entries":[{"operation","requester","target","room","keyPackages"}]}
//   {"op":"createRoom","peer","room","impostor"?} creates alice's group,
//        adds the kept KeyPackages, sends the Welcome in a notify ->
//        {"status","epoch"}; with "impostor" (a URI) it also adds a client
//        of its own whose basic credential names that URI, which "send"
//        with "asImpostor": true speaks as (a hub lying in its tree)
//   {"op":"send","peer","room","text","inReplyTo"?,"hold"?} -> {"status",
//        "id","retryAfter","content","notifyBody"} (content: the MIMI content
//        sent; notifyBody: the notify body; both base64). With "hold": true
//        the message is encrypted but not sent: only id, content and
//        notifyBody come back, for tests that send it themselves (raw).
//        In a room alice follows, it goes to the room's hub instead (peer
//        is not needed), encrypted by her first client, by submitMessage
//        with sendingUri alice (or "sendingUri", for tests of bad input)
//        -> {"status","id","content","submitBody","response":{"status":
//        "accepted"|"notAllowed"|"epochTooOld","timestamp","franked",
//        "currentEpoch"}}, or "body" (text) instead of "response" when the
//        answer is not application/octet-stream; "hold" as above.
//   {"op":"report","peer","room","id","status"} a message status report,
//        same answer as send.
//   {"op":"commit","peer","room","remove"?:[userURI]} commits the proposals
//        the gateway sent to update (and removes the named users' clients),
//        fans the commit out in a notify -> {"status","epoch"}; with
//        "hold": true alice moves to the new epoch but nothing is sent ->
//        {"epoch","notifyBody"}
//   {"op":"followerCommit","peer","room","add"?,"remove"?:[userURI]} in a
//        room alice follows, her first client commits the Add of a new
//        client whose basic credential names "add" (a client of alice's
//        joins from the Welcome the hub sends back) and the Remove of the
//        named members' leaves, and sends it to the hub by update
//        (HandshakeBundle: the commit, the Welcome if any, a full GroupInfo
//        and the full ratchet tree) -> {"status","code","description",
//        "value"}; alice moves to the new epoch only if the hub took it
//   {"op":"roomInfo","room"} -> {"epoch","members":[userURI],"pending":N};
//        for a room alice follows also "hub" and "clients" (those joined).
//   {"op":"raw","peer","endpoint","param","body","from"?} any bytes to any
//        endpoint -> {"status","body"}
//   {"op":"received"} everything decrypted from submitMessage and notify
//        since the last call -> {"messages":[{"room","sender","sendingUri",
//        "contentType","text","id","statuses":[{"id","status"}]}]} (from
//        notify, sendingUri is the identity of the sender's leaf).
//   {"op":"close"} stops the server and exits.
// Every network wait is bounded by 10 seconds.
//
// Readings followed where the draft leaves room (the project's contract,
// which the gateway follows too):
// - Paths are the directory's templates; the directory must name all ten
//   endpoints with https templates. A path parameter is escaped as
//   encodeURIComponent does, and any valid percent-encoding is accepted.
// - Every request carries From: mimi@<source domain> and Host: <target
//   domain>; the server refuses a From whose domain is not a DNS name of
//   the client certificate (403) and a Host that is not desktop.test (421).
//   Bodies are application/octet-stream; notify answers 201.
// - Encoding as RFC 9420 section 2.1: <V> is a QUIC-style varint of 1, 2 or
//   4 bytes, and a length not in its shortest form, or in 8 bytes, is an
//   error; optional<T> is one byte 0 or 1 (anything else is an error);
//   enums are one byte, CipherSuite two, timestamps uint64 milliseconds;
//   URIs and strings are opaque<V> of valid UTF-8; the protocol byte must be
//   mls10 (1). Nothing may follow the structure. An MLSMessage must come
//   back to the same bytes when ts-mls encodes it again.
// - A FanoutMessage is timestamp, MLSMessage, then optional<Frank> for an
//   application message, a RatchetTreeOption for a Welcome, MLSMessage<V>
//   for a proposal or a commit. RatchetTreeOption full(1) holds the bytes of
//   a ratchet_tree extension, length prefix included.
// - A HandshakeBundle's commit is followed by optional<Welcome> (the bare
//   Welcome), GroupInfoOption (full: bare GroupInfo; partial:
//   PartialGroupInfo) and RatchetTreeOption; a proposal by MLSMessage<V>.
//   Handshakes must be PublicMessages: this peer has no SemiPrivateMessage.
// - SubmitMessageResponse uses accepted(0), notAllowed(1), epochTooOld(2)
//   and optional<Frank>. HTTP status with it: accepted 200, a message that
//   does not decrypt or whose content does not decode 400, a sender that is
//   not a member (or whose leaf is not the sendingUri) 403, an epoch the
//   hub no longer keeps 409. UpdateRoomResponse: success 200, wrongEpoch
//   409, notAllowed 403 (sender not a member) or 400 (commit refused by
//   MLS), invalidProposal 400. Input that does not decode gets 400 with a
//   text body; an unknown room 404.
// - ConsentEntry: consentOperation (cancel 0, request 1, grant 2, revoke
//   3), requesterUri, targetUri, optional<RoomId>, clientKeyPackages
//   KeyPackage<V> for a grant only, consent_extensions; requestConsent and
//   updateConsent answer 201 with no body.
// - KeyMaterialRequest is signed with SignWithLabel(key,
//   "KeyMaterialRequestTBS", the request without its signature); a
//   ClientKeyMaterial holds a bare KeyPackage on success and
//   optional<Capabilities> on nothingCompatible; clients must be empty for
//   user statuses other than success, partialSuccess, noCompatibleMaterial.
//   Served: the requestingUser must be of the source domain, a basic
//   requesterCredential must name it and the signature must verify (403);
//   a targetUser other than the path's is 400; for a user other than alice
//   the answer is userUnknown; a request without cipher suite 1, or
//   requiring types alice's clients lack, gets noCompatibleMaterial with
//   each client nothingCompatible, capabilities withheld. Alice's
//   KeyPackages list app_data_dictionary (6), where MIMI rooms keep their
//   participant list.
// - IdentifierRequest: QueryElement is searchType, a name for types 7 and
//   8 only, searchValue. identifierQuery/{domain} for a domain not this
//   one is 404; a query all of whose elements are phone(4) numbers alice
//   owns answers success with her URI, anything else notFound, with no
//   profiles.
// - notify (served): the room URI's domain must be the source domain
//   (403); the whole body applies or nothing does (400); a room alice has
//   not joined takes only a body starting with a Welcome (404), and the
//   Welcome must name a KeyPackage alice handed out and carry the tree
//   full(1); a commit's externalProposals apply before it, a proposal's
//   moreProposals after it; an application message is recorded with the
//   identity of its sender's leaf as sendingUri. A body already applied
//   (same SHA-256) is answered 201 and not applied again.
// - MIMI content is decoded strictly: it must be core deterministic CBOR
//   (the bytes must come back unchanged when re-encoded), an array of seven
//   items with a 16-byte salt and 32-byte message IDs, and its sender (1)
//   and room (2) extensions, when present, must be the sendingUri and the
//   room of the submitMessage. The message ID is 0x01 and the first 31
//   bytes of SHA-256(uint16 length || sender URI || uint16 length || room
//   URI || encoded message || salt).
//
// The modules are imported one by one, as in mls-peer.mjs: ts-mls 1.6.4's
// index also loads a crypto provider that needs a package ts-mls does not
// declare.
import readline from "node:readline";
import https from "node:https";
import fs from "node:fs";
import crypto from "node:crypto";
import { encode as cborEncode, decode as cborDecode, rfc8949EncodeOptions } from "cborg";
import { getCiphersuiteImpl } from "ts-mls/crypto/getCiphersuiteImpl.js";
import { getCiphersuiteFromName } from "ts-mls/crypto/ciphersuite.js";
import { generateKeyPackage, generateKeyPackageWithKey, decodeKeyPackage, encodeKeyPackage, makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { defaultCapabilities } from "ts-mls/defaultCapabilities.js";
import { defaultLifetime } from "ts-mls/lifetime.js";
import { createGroup, joinGroup } from "ts-mls/clientState.js";
import { createCommit, createGroupInfo } from "ts-mls/createCommit.js";
import { createApplicationMessage } from "ts-mls/createMessage.js";
import { processMessage } from "ts-mls/processMessages.js";
import { acceptAll } from "ts-mls/incomingMessageAction.js";
import { emptyPskIndex } from "ts-mls/pskIndex.js";
import { encodeMlsMessage, decodeMlsMessage } from "ts-mls/message.js";
import { zeroOutUint8Array } from "ts-mls/util/byteArray.js";
import { encodeRatchetTree, decodeRatchetTree } from "ts-mls/ratchetTree.js";
import { decodeWelcome, encodeWelcome } from "ts-mls/welcome.js";
import { decodeGroupInfo, encodeGroupInfo } from "ts-mls/groupInfo.js";
import { decodeCapabilities } from "ts-mls/capabilities.js";
import { decryptSenderData } from "ts-mls/privateMessage.js";
import { makeProposalRef } from "ts-mls/authenticatedContent.js";

const DOMAIN = "desktop.test";
const ALICE = `mimi://${DOMAIN}/u/alice`;
const TIMEOUT_MS = 10_000;
const MAX_BODY = 1 << 20;

const impl = await getCiphersuiteImpl(getCiphersuiteFromName("MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"));

const log = (...a) => process.stderr.write(`[mimi-provider-peer] ${a.join(" ")}\n`);
const b64 = (u8) => Buffer.from(u8).toString("base64");
const unb64 = (s) => new Uint8Array(Buffer.from(s, "base64"));
const hex = (u8) => Buffer.from(u8).toString("hex");
const utf8 = (s) => new TextEncoder().encode(s);
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function unhex(s, n, what) {
  if (typeof s !== "string" || !/^[0-9a-fA-F]*$/.test(s) || s.length !== 2 * n) {
    throw new Error(`${what}: want ${2 * n} hex digits`);
  }
  return new Uint8Array(Buffer.from(s, "hex"));
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ---------------------------------------------------------------------------
// TLS presentation language, RFC 9420 section 2.1 flavour.

class WireError extends Error {}

function varint(n) {
  if (!Number.isInteger(n) || n < 0) throw new Error(`bad length ${n}`);
  if (n < 0x40) return Uint8Array.of(n);
  if (n < 0x4000) return Uint8Array.of(0x40 | (n >> 8), n & 0xff);
  if (n < 0x40000000) return Uint8Array.of(0x80 | (n >>> 24), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  throw new Error(`length ${n} too large`);
}

const w = {
  u8: (n) => Uint8Array.of(n),
  u16: (n) => Uint8Array.of(n >> 8, n & 0xff),
  u64: (n) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(n));
    return b;
  },
  opaque: (bytes) => concat([varint(bytes.length), bytes]),
  string: (s) => w.opaque(utf8(s)),
  // vector<V> of already encoded items
  vector: (items) => {
    const body = concat(items);
    return concat([varint(body.length), body]);
  },
  optional: (bytes) => (bytes === undefined ? Uint8Array.of(0) : concat([Uint8Array.of(1), bytes])),
};

class Reader {
  constructor(buf, what) {
    this.buf = buf;
    this.off = 0;
    this.what = what;
  }
  fail(field, msg) {
    throw new WireError(`${this.what}: ${field}: ${msg} (at byte ${this.off})`);
  }
  left() {
    return this.buf.length - this.off;
  }
  take(field, n) {
    if (n > this.left()) this.fail(field, `${n} bytes wanted, ${this.left()} left`);
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }
  u8(field) {
    return this.take(field, 1)[0];
  }
  u16(field) {
    const b = this.take(field, 2);
    return (b[0] << 8) | b[1];
  }
  u64(field) {
    const b = this.take(field, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
  }
  varint(field) {
    if (this.left() < 1) this.fail(field, "length missing");
    const first = this.buf[this.off];
    const prefix = first >> 6;
    if (prefix === 0) {
      this.off++;
      return first & 0x3f;
    }
    if (prefix === 1) {
      const b = this.take(field, 2);
      const n = ((b[0] & 0x3f) << 8) | b[1];
      if (n < 0x40) this.fail(field, `length ${n} not in its shortest form`);
      return n;
    }
    if (prefix === 2) {
      const b = this.take(field, 4);
      const n = ((b[0] & 0x3f) * 0x1000000) + (b[1] << 16) + (b[2] << 8) + b[3];
      if (n < 0x4000) this.fail(field, `length ${n} not in its shortest form`);
      return n;
    }
    this.fail(field, "8-byte length");
  }
  opaque(field) {
    const n = this.varint(field);
    return this.take(field, n);
  }
  string(field) {
    const b = this.opaque(field);
    try {
      return strictUtf8.decode(b);
    } catch {
      this.fail(field, "invalid UTF-8");
    }
  }
  optional(field, f) {
    const p = this.u8(field);
    if (p === 0) return undefined;
    if (p !== 1) this.fail(field, `optional presence byte ${p}`);
    return f(this);
  }
  // vector reads a <V> vector whose content is items parsed by f.
  vector(field, f) {
    const body = this.opaque(field);
    const sub = new Reader(body, `${this.what}.${field}`);
    const out = [];
    while (sub.left() > 0) out.push(f(sub, out.length));
    return out;
  }
  protocol(field = "protocol") {
    const p = this.u8(field);
    if (p !== 1) this.fail(field, `protocol ${p}, only mls10(1) is known`);
    return p;
  }
  // mls decodes one MLS object with a ts-mls decoder and returns it with
  // its exact bytes.
  mls(field, decoder) {
    let d;
    try {
      d = decoder(this.buf, this.off);
    } catch (e) {
      this.fail(field, `does not decode: ${e.message}`);
    }
    if (d === undefined || d[1] <= 0 || this.off + d[1] > this.buf.length) this.fail(field, "does not decode");
    const bytes = this.buf.subarray(this.off, this.off + d[1]);
    this.off += d[1];
    return { value: d[0], bytes };
  }
  // mlsMessage decodes an MLSMessage and insists that ts-mls writes it back
  // to the very same bytes (catching lengths not in their shortest form,
  // which RFC 9420 forbids, inside the MLS structures).
  mlsMessage(field) {
    const { value, bytes } = this.mls(field, decodeMlsMessage);
    if (value.version !== "mls10") this.fail(field, `MLS version ${value.version}`);
    let again;
    try {
      again = encodeMlsMessage(value);
    } catch (e) {
      this.fail(field, `does not re-encode: ${e.message}`);
    }
    if (!equalBytes(again, bytes)) this.fail(field, "MLSMessage is not in canonical form (re-encoding differs)");
    return { msg: value, bytes };
  }
  end() {
    if (this.left() !== 0) this.fail("end", `${this.left()} bytes after the structure`);
  }
}

// contentType of an MLSMessage carrying framed content, or undefined.
function framedContentType(msg) {
  if (msg.wireformat === "mls_public_message") return msg.publicMessage.content.contentType;
  if (msg.wireformat === "mls_private_message") return msg.privateMessage.contentType;
  return undefined;
}

// ---------------------------------------------------------------------------
// MIMI protocol structures (draft-ietf-mimi-protocol-06).

const uri = (s) => w.string(s); // IdentifierUri: struct { opaque uri<V>; }

// IdentifierRequest with one QueryElement and no extensions.
function encodeIdentifierRequest(searchType, value) {
  if (searchType === 7 || searchType === 8) throw new Error("claimName/propertyName not supported here");
  const element = concat([w.u8(searchType), w.string(value)]);
  const extensions = w.vector([]); // AppDataDictionary: ComponentData component_data<V>
  return concat([w.vector([element]), extensions]);
}

function readAppDataDictionary(r, field) {
  let prev = -1;
  return r.vector(field, (s) => {
    const id = s.u16("component_id");
    if (id <= prev) s.fail("component_id", `${id} after ${prev}: must be sorted and unique`);
    prev = id;
    return { id, data: s.opaque("data") };
  });
}

const IDENTIFIER_CODES = ["success", "notFound", "ambiguous", "forbidden", "unsupportedField"];

// decodeIdentifierRequest returns the QueryElements of an IdentifierRequest
// (a claimName or propertyName only for searchType 7 and 8).
function decodeIdentifierRequest(buf) {
  const r = new Reader(buf, "IdentifierRequest");
  const elements = r.vector("query_elements", (s) => {
    const searchType = s.u8("searchType");
    if (searchType < 1 || searchType > 8) s.fail("searchType", `unknown type ${searchType}`);
    const name = searchType === 7 || searchType === 8 ? s.string("name") : undefined;
    return { searchType, name, value: s.string("searchValue") };
  });
  readAppDataDictionary(r, "id_request_extensions");
  r.end();
  return elements;
}

// IdentifierResponse with no profiles and no extensions.
function encodeIdentifierResponse(code, uris) {
  return concat([w.u8(code), w.vector(uris.map(uri)), w.vector([]), w.vector([])]);
}

function decodeIdentifierResponse(buf) {
  const r = new Reader(buf, "IdentifierResponse");
  const code = r.u8("responseCode");
  if (code >= IDENTIFIER_CODES.length) r.fail("responseCode", `unknown code ${code}`);
  const uris = r.vector("uri", (s) => s.string("uri"));
  const profiles = r.vector("foundProfiles", (s) => {
    const stableUri = s.string("stableUri");
    const fields = s.vector("fields", (f) => {
      const fieldSource = f.u8("fieldSource");
      if (fieldSource !== 7 && fieldSource !== 8) f.fail("fieldSource", `unknown source ${fieldSource}`);
      return { fieldSource, fieldName: f.string("fieldName"), fieldValue: hex(f.opaque("fieldValue")) };
    });
    return { stableUri, fields };
  });
  readAppDataDictionary(r, "id_response_extensions");
  r.end();
  return { code, uris, profiles };
}

// KeyMaterialRequestTBS: the request without its signature.
function encodeKeyMaterialRequestTBS({ requestingUser, targetUser, roomId, signatureKey, identity }) {
  return concat([
    w.u8(1), // mls10
    uri(requestingUser),
    uri(targetUser),
    uri(roomId),
    w.vector([w.u16(1)]), // acceptableCiphersuites: MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
    concat([w.vector([]), w.vector([]), w.vector([])]), // RequiredCapabilities: extension, proposal, credential types
    w.opaque(signatureKey), // SignaturePublicKey
    concat([w.u16(1), w.opaque(identity)]), // Credential: basic(1), identity<V>
  ]);
}

// signContent is RFC 9420's SignContent for SignWithLabel.
function signContent(label, content) {
  return concat([w.opaque(utf8(`MLS 1.0 ${label}`)), w.opaque(content)]);
}

async function encodeKeyMaterialRequest(fields, signKey) {
  const tbs = encodeKeyMaterialRequestTBS(fields);
  const sig = await impl.signature.sign(signKey, signContent("KeyMaterialRequestTBS", tbs));
  return concat([tbs, w.opaque(sig)]);
}

function readCredential(r) {
  const type = r.u16("credential_type");
  if (type === 1) return { type, identity: r.opaque("identity") };
  if (type === 2) return { type, certificates: r.vector("certificates", (s) => s.opaque("cert_data")) };
  r.fail("credential_type", `credential type ${type} is neither basic(1) nor x509(2)`);
}

const u16s = (r, field) => r.vector(field, (s) => s.u16(field));

// decodeKeyMaterialRequest reads a KeyMaterialRequest; tbs is the request
// without its signature, as signed.
function decodeKeyMaterialRequest(buf) {
  const r = new Reader(buf, "KeyMaterialRequest");
  r.protocol();
  const requestingUser = r.string("requestingUser");
  const targetUser = r.string("targetUser");
  const roomId = r.string("roomId");
  const cipherSuites = u16s(r, "acceptableCiphersuites");
  if (cipherSuites.length === 0) r.fail("acceptableCiphersuites", "empty");
  const required = { extensions: u16s(r, "extension_types"), proposals: u16s(r, "proposal_types"), credentials: u16s(r, "credential_types") };
  const signatureKey = r.opaque("requesterSignatureKey");
  const credential = readCredential(r);
  const tbs = buf.subarray(0, r.off);
  const signature = r.opaque("key_material_request_signature");
  r.end();
  return { requestingUser, targetUser, roomId, cipherSuites, required, signatureKey, credential, tbs, signature };
}

// encodeKeyMaterialResponse: each client is {status, uri, keyPackage}, a
// bare KeyPackage on success; nothingCompatible withholds capabilities.
function encodeKeyMaterialResponse(userStatus, userUri, clients) {
  const client = (c) => concat([w.u8(c.status), uri(c.uri), c.status === 0 ? encodeKeyPackage(c.keyPackage) : w.optional(undefined)]);
  return concat([w.u8(1), w.u8(userStatus), uri(userUri), w.vector(clients.map(client))]);
}

const USER_CODES = ["success", "partialSuccess", "incompatibleProtocol", "noCompatibleMaterial", "userUnknown", "noConsent", "noConsentForThisRoom", "userDeleted"];
const CLIENT_CODES = ["success", "keyMaterialExhausted", "nothingCompatible"];

function decodeKeyMaterialResponse(buf) {
  const r = new Reader(buf, "KeyMaterialResponse");
  r.protocol();
  const userStatus = r.u8("userStatus");
  if (userStatus >= USER_CODES.length) r.fail("userStatus", `unknown code ${userStatus}`);
  const userUri = r.string("userUri");
  const clients = r.vector("clients", (s) => {
    const status = s.u8("clientStatus");
    if (status >= CLIENT_CODES.length) s.fail("clientStatus", `unknown code ${status}`);
    const clientUri = s.string("clientUri");
    const c = { status, uri: clientUri };
    if (status === 0) {
      c.keyPackage = s.mls("keyPackage", decodeKeyPackage).value;
    } else if (status === 2) {
      c.capabilities = s.optional("clientCapabilities", (t) => t.mls("clientCapabilities", decodeCapabilities).value);
    }
    return c;
  });
  r.end();
  if (![0, 1, 3].includes(userStatus) && clients.length > 0) {
    throw new WireError(`KeyMaterialResponse: userStatus ${USER_CODES[userStatus]} with ${clients.length} clients (must be empty)`);
  }
  return { userStatus, userUri, clients };
}

const CONSENT_OPERATIONS = ["cancel", "request", "grant", "revoke"];

// ConsentEntry for a request or a cancel (no clientKeyPackages).
function encodeConsentEntry({ operation, requester, target, room }) {
  const op = CONSENT_OPERATIONS.indexOf(operation);
  if (op !== 0 && op !== 1) throw new Error(`consent operation ${operation}: only request or cancel are sent`);
  return concat([w.u8(op), uri(requester), uri(target), w.optional(room === undefined ? undefined : uri(room)), w.vector([])]);
}

function decodeConsentEntry(buf) {
  const r = new Reader(buf, "ConsentEntry");
  const op = r.u8("consentOperation");
  if (op >= CONSENT_OPERATIONS.length) r.fail("consentOperation", `unknown operation ${op}`);
  const requester = r.string("requesterUri");
  const target = r.string("targetUri");
  const room = r.optional("roomId", (t) => t.string("roomId"));
  if (room === "") r.fail("roomId", "present but empty");
  const keyPackages = op === 2 ? r.vector("clientKeyPackages", (s) => s.mls("keyPackage", decodeKeyPackage).value) : [];
  readAppDataDictionary(r, "consent_extensions");
  r.end();
  return { operation: CONSENT_OPERATIONS[op], requester, target, room, keyPackages };
}

// RatchetTreeOption full(1): the ratchet_tree extension data.
function encodeRatchetTreeOptionFull(tree) {
  return concat([w.u8(1), encodeRatchetTree(tree)]);
}

function readRatchetTreeOption(r) {
  const kind = r.u8("ratchetTreeOption");
  switch (kind) {
    case 1:
      return { kind, tree: r.mls("ratchet_tree", decodeRatchetTree).value };
    case 2:
      return { kind, url: r.string("url"), signature: r.opaque("tree_signature") };
    case 3:
      return { kind, signature: r.opaque("tree_signature") };
    case 4:
      return { kind };
  }
  r.fail("ratchetTreeOption", `unknown representation ${kind}`);
}

function mlsMessageBytes(m) {
  return encodeMlsMessage(m);
}

// FanoutMessage for an application message (no Frank), a Welcome (with a
// full ratchet tree) or a commit (no external proposals).
function encodeFanout(timestampMs, mlsMessage, tail) {
  return concat([w.u64(timestampMs), mlsMessageBytes(mlsMessage), tail]);
}
const fanoutApplication = (ts, m) => encodeFanout(ts, m, w.optional(undefined));
const fanoutWelcome = (ts, m, tree) => encodeFanout(ts, m, encodeRatchetTreeOptionFull(tree));
const fanoutHandshake = (ts, m) => encodeFanout(ts, m, w.vector([]));

function readFrank(r) {
  return { serverFrank: r.take("server_frank", 32), cipherSuite: r.u16("franking_signature_ciphersuite"), signature: r.opaque("franking_integrity_signature") };
}

// decodeNotify reads a notify body: FanoutMessages back to back, at least
// one.
function decodeNotify(buf) {
  const r = new Reader(buf, "notify");
  if (r.left() === 0) r.fail("notify", "empty body");
  const out = [];
  while (r.left() > 0) {
    const timestamp = r.u64("timestamp");
    const { msg } = r.mlsMessage("message");
    const m = { timestamp, msg, contentType: framedContentType(msg) };
    if (msg.wireformat === "mls_welcome") m.tree = readRatchetTreeOption(r);
    else if (m.contentType === "application") m.frank = r.optional("frank", readFrank);
    else if (m.contentType === "proposal") m.proposals = r.vector("moreProposals", (s) => s.mlsMessage("moreProposals").msg);
    else if (m.contentType === "commit") m.proposals = r.vector("externalProposals", (s) => s.mlsMessage("externalProposals").msg);
    else r.fail("message", `${msg.wireformat} is not a fanout message`);
    out.push(m);
  }
  return out;
}

function encodeSubmitMessageRequest(msg, sendingUri) {
  return concat([w.u8(1), encodeMlsMessage(msg), uri(sendingUri)]);
}

const SUBMIT_CODES = ["accepted", "notAllowed", "epochTooOld"];

function decodeSubmitMessageResponse(buf) {
  const r = new Reader(buf, "SubmitMessageResponse");
  r.protocol();
  const code = r.u8("statusCode");
  if (code >= SUBMIT_CODES.length) r.fail("statusCode", `unknown code ${code}`);
  const out = { status: SUBMIT_CODES[code] };
  if (code === 0) {
    out.timestamp = Number(r.u64("accepted_timestamp"));
    out.franked = r.optional("frank", readFrank) !== undefined;
  }
  if (code === 2) out.currentEpoch = Number(r.u64("currentEpoch"));
  r.end();
  return out;
}

function decodeSubmitMessageRequest(buf) {
  const r = new Reader(buf, "SubmitMessageRequest");
  r.protocol();
  const { msg, bytes } = r.mlsMessage("appMessage");
  if (msg.wireformat !== "mls_private_message") r.fail("appMessage", `wire format ${msg.wireformat}, want mls_private_message`);
  if (msg.privateMessage.contentType !== "application") r.fail("appMessage", `content type ${msg.privateMessage.contentType}, want application`);
  const sendingUri = r.string("sendingUri");
  r.end();
  return { msg, bytes, sendingUri };
}

function encodeSubmitMessageResponse(status, value) {
  const parts = [w.u8(1), w.u8(status)];
  if (status === 0) parts.push(w.u64(value), w.optional(undefined)); // accepted_timestamp, no Frank
  if (status === 2) parts.push(w.u64(value)); // currentEpoch
  return concat(parts);
}

function decodeHandshakeBundle(buf) {
  const r = new Reader(buf, "HandshakeBundle");
  const first = r.mlsMessage("proposalOrCommit");
  if (first.msg.wireformat !== "mls_public_message") {
    r.fail("proposalOrCommit", `wire format ${first.msg.wireformat}, want mls_public_message (SemiPrivateMessage is not supported by this peer)`);
  }
  const contentType = framedContentType(first.msg);
  const bundle = { first, contentType };
  if (contentType === "commit") {
    bundle.welcome = r.optional("welcome", (s) => s.mls("welcome", decodeWelcome).value);
    const rep = r.u8("groupInfoOption");
    if (rep === 1) {
      bundle.groupInfo = r.mls("groupInfo", decodeGroupInfo).value;
    } else if (rep === 2) {
      const presence = r.u8("ratchet_tree_presence");
      if (presence > 3) r.fail("ratchet_tree_presence", `unknown value ${presence}`);
      const extensions = r.vector("group_info_extensions", (s) => ({ type: s.u16("extension_type"), data: s.opaque("extension_data") }));
      bundle.partialGroupInfo = { presence, extensions, signature: r.opaque("signature") };
    } else {
      r.fail("groupInfoOption", `unknown representation ${rep}`);
    }
    bundle.ratchetTreeOption = readRatchetTreeOption(r);
  } else if (contentType === "proposal") {
    bundle.moreProposals = r.vector("moreProposals", (s) => s.mlsMessage("moreProposals"));
    for (const p of bundle.moreProposals) {
      if (p.msg.wireformat !== "mls_public_message" || framedContentType(p.msg) !== "proposal") {
        throw new WireError("HandshakeBundle: moreProposals holds something other than PublicMessage proposals");
      }
    }
  } else {
    r.fail("proposalOrCommit", `content type ${contentType}, want commit or proposal`);
  }
  r.end();
  return bundle;
}

function encodeUpdateRoomResponse(code, description, value) {
  const parts = [w.u8(code), w.string(description)];
  if (code === 0 || code === 1) parts.push(w.u64(value)); // accepted_timestamp / currentEpoch
  if (code === 3) parts.push(w.vector(value.map((ref) => w.opaque(ref)))); // ProposalRef invalidProposals<V>
  return concat(parts);
}

const UPDATE_CODES = ["success", "wrongEpoch", "notAllowed", "invalidProposal"];

function decodeUpdateRoomResponse(buf) {
  const r = new Reader(buf, "UpdateRoomResponse");
  const code = r.u8("responseCode");
  if (code >= UPDATE_CODES.length) r.fail("responseCode", `unknown code ${code}`);
  const description = r.string("errorDescription");
  let value;
  if (code === 0 || code === 1) value = Number(r.u64(code === 0 ? "accepted_timestamp" : "currentEpoch"));
  if (code === 3) value = r.vector("invalidProposals", (s) => hex(s.opaque("proposalRef")));
  r.end();
  return { code: UPDATE_CODES[code], description, value };
}

// ---------------------------------------------------------------------------
// MIMI content (draft-ietf-mimi-content-08) on cborg.

const CBOR_DECODE = { strict: true, allowIndefinite: false, allowUndefined: false, rejectDuplicateMapKeys: true, useMaps: true };
const STATUS_NAMES = ["unread", "delivered", "read", "expired", "deleted", "hidden", "error"];
const TYPE_PLAIN = "text/plain;charset=utf-8";
const TYPE_STATUS = "application/mimi-message-status";

function cbor(value) {
  return cborEncode(value, rfc8949EncodeOptions);
}

// encodeContent writes the seven items: salt, replaces, topicId, expires,
// inReplyTo, extensions {1: sender URI, 2: room URI}, body (a SinglePart:
// disposition, language, cardinality 1, content type, content).
function encodeContent({ salt, inReplyTo, sender, room, disposition, contentType, content }) {
  const extensions = new Map([[1, sender], [2, room]]);
  const body = [disposition, "", 1, contentType, content];
  return cbor([salt, null, new Uint8Array(0), null, inReplyTo ?? null, extensions, body]);
}

function messageId(sender, room, encoded, salt) {
  const s = utf8(sender);
  const r = utf8(room);
  if (s.length > 0xffff || r.length > 0xffff) throw new Error("URI too long for a message ID");
  const h = crypto.createHash("sha256");
  h.update(w.u16(s.length)).update(s).update(w.u16(r.length)).update(r).update(encoded).update(salt);
  const sum = h.digest();
  return concat([Uint8Array.of(1), sum.subarray(0, 31)]);
}

// strictCbor decodes one item and insists the bytes are its core
// deterministic encoding.
function strictCbor(bytes, what) {
  let v;
  try {
    v = cborDecode(bytes, CBOR_DECODE);
  } catch (e) {
    throw new Error(`${what}: ${e.message}`);
  }
  let again;
  try {
    again = cbor(v);
  } catch (e) {
    throw new Error(`${what}: cannot re-encode: ${e.message}`);
  }
  if (!equalBytes(again, bytes)) {
    throw new Error(`${what}: not core deterministic CBOR (re-encoding differs: keys out of order, long floats or invalid UTF-8)`);
  }
  return v;
}

const isBytes = (x) => x instanceof Uint8Array;
const isUint = (x, max) => typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= max;

function checkPart(p, depth, where, count) {
  if (depth > 4) throw new Error(`${where}: parts nested deeper than 4`);
  if (++count.n > 1024) throw new Error(`${where}: more than 1024 parts`);
  if (!Array.isArray(p) || p.length < 3) throw new Error(`${where}: NestedPart is not an array of at least 3 items`);
  const [disposition, language, cardinality] = p;
  if (!isUint(disposition, 255)) throw new Error(`${where}: disposition`);
  if (typeof language !== "string") throw new Error(`${where}: language`);
  if (!isUint(cardinality, 3)) throw new Error(`${where}: unknown cardinality ${cardinality}`);
  const want = [3, 5, 15, 5][cardinality];
  if (want === undefined) throw new Error(`${where}: unknown cardinality ${cardinality}`);
  if (p.length !== want) throw new Error(`${where}: cardinality ${cardinality} with ${p.length} items, want ${want}`);
  const part = { disposition, language, cardinality };
  if (cardinality === 1) {
    if (typeof p[3] !== "string" || !isBytes(p[4])) throw new Error(`${where}: SinglePart contentType/content`);
    part.contentType = p[3];
    part.content = p[4];
  } else if (cardinality === 2) {
    const [ct, url, expires, size, encAlg, key, nonce, aad, hashAlg, hash, description, filename] = p.slice(3);
    if (typeof ct !== "string" || typeof url !== "string" || !isUint(expires, 0xffffffff) || !(isUint(size, Number.MAX_SAFE_INTEGER) || typeof size === "bigint") ||
      !isUint(encAlg, 0xffff) || !isBytes(key) || !isBytes(nonce) || !isBytes(aad) || !isUint(hashAlg, 255) || !isBytes(hash) ||
      typeof description !== "string" || typeof filename !== "string") {
      throw new Error(`${where}: ExternalPart fields`);
    }
    part.contentType = ct;
  } else if (cardinality === 3) {
    if (!isUint(p[3], 2)) throw new Error(`${where}: partSemantics ${p[3]}`);
    if (!Array.isArray(p[4]) || p[4].length < 2) throw new Error(`${where}: MultiPart needs at least 2 parts`);
    part.parts = p[4].map((q, i) => checkPart(q, depth + 1, `${where}.parts[${i}]`, count));
  }
  return part;
}

function decodeContent(bytes) {
  const v = strictCbor(bytes, "MIMI content");
  if (!Array.isArray(v) || v.length !== 7) throw new Error("MIMI content: not an array of 7 items");
  const [salt, replaces, topicId, expires, inReplyTo, extensions, body] = v;
  if (!isBytes(salt) || salt.length !== 16) throw new Error("MIMI content: salt is not 16 bytes");
  if (replaces !== null && !(isBytes(replaces) && replaces.length === 32)) throw new Error("MIMI content: replaces");
  if (!isBytes(topicId) || topicId.length > 4096) throw new Error("MIMI content: topicId");
  if (expires !== null && !(Array.isArray(expires) && expires.length === 2 && typeof expires[0] === "boolean" && isUint(expires[1], 0xffffffff))) {
    throw new Error("MIMI content: expires");
  }
  if (inReplyTo !== null && !(isBytes(inReplyTo) && inReplyTo.length === 32)) throw new Error("MIMI content: inReplyTo");
  if (!(extensions instanceof Map)) throw new Error("MIMI content: extensions is not a map");
  for (const k of extensions.keys()) {
    const textKey = typeof k === "string" && utf8(k).length >= 1 && utf8(k).length <= 255;
    if (!(typeof k === "number" && Number.isSafeInteger(k)) && !textKey) {
      throw new Error(`MIMI content: extension key ${String(k)}`);
    }
  }
  const sender = extensions.get(1);
  const room = extensions.get(2);
  if (sender !== undefined && (typeof sender !== "string" || sender === "")) throw new Error("MIMI content: sender URI (extension 1)");
  if (room !== undefined && (typeof room !== "string" || room === "")) throw new Error("MIMI content: room URI (extension 2)");
  const part = checkPart(body, 1, "MIMI content: body", { n: 0 });
  return { salt, replaces, inReplyTo, sender, room, body: part };
}

function baseType(t) {
  return t.split(";")[0].trim().toLowerCase();
}

function firstText(part) {
  if (part.cardinality === 1 && ["text/plain", "text/markdown"].includes(baseType(part.contentType))) {
    return strictUtf8.decode(part.content);
  }
  for (const q of part.parts ?? []) {
    const t = firstText(q);
    if (t !== undefined) return t;
  }
  return undefined;
}

function encodeStatusReport(entries) {
  return cbor(entries.map((e) => [e.id, e.status]));
}

function decodeStatusReport(bytes) {
  const v = strictCbor(bytes, "status report");
  if (!Array.isArray(v)) throw new Error("status report: not an array");
  return v.map((e, i) => {
    if (!Array.isArray(e) || e.length !== 2 || !isBytes(e[0]) || e[0].length !== 32 || !isUint(e[1], 255)) {
      throw new Error(`status report: entry ${i} is not [32-byte id, status]`);
    }
    return { id: hex(e[0]), status: STATUS_NAMES[e[1]] ?? `unknown(${e[1]})` };
  });
}

// ---------------------------------------------------------------------------
// State.

let alice; // { credential, signKey, publicKey }
const rooms = new Map(); // room URI -> { state, peer }
const owned = new Set(); // numbers identifierQuery finds alice by
let clientCount = 1; // alice's clients, one KeyPackage each in a keyMaterial answer
let kpIdentity = ALICE; // the identity in the KeyPackages keyMaterial hands out
const clients = []; // alice's clients: { uri, signKey, publicKey }
const handedOut = new Map(); // KeyPackageRef (hex) -> { uri, publicPackage, privatePackage } until a Welcome uses it
const followed = new Map(); // room URI of another hub -> { hub, clients: [{ uri, state }], seen: Set of notify body digests }
const fetched = new Map(); // room URI -> [KeyPackage]
let consents = []; // updateConsent entries not yet reported
const peers = new Map(); // domain -> { domain, url, cert, key, ca, directory }
let received = [];
let server;
let serverUrl;
let serverTls;

async function aliceIdentity() {
  if (!alice) {
    const kp = await impl.signature.keygen();
    alice = { credential: { credentialType: "basic", identity: utf8(ALICE) }, signKey: kp.signKey, publicKey: kp.publicKey };
  }
  return alice;
}

// aliceClients returns clientCount clients of alice, made on first use,
// each with its own signature key and URI mimi://desktop.test/d/alice/<n>.
async function aliceClients() {
  while (clients.length < clientCount) {
    const kp = await impl.signature.keygen();
    clients.push({ uri: `mimi://${DOMAIN}/d/alice/${clients.length + 1}`, signKey: kp.signKey, publicKey: kp.publicKey });
  }
  return clients.slice(0, clientCount);
}

// The app_data_dictionary GroupContext extension (draft-ietf-mls-extensions),
// where MIMI rooms keep their participant list: alice's clients list it.
const APP_DATA_DICTIONARY = 6;

function clientCapabilities() {
  const c = defaultCapabilities();
  return { ...c, extensions: [...c.extensions, APP_DATA_DICTIONARY] };
}

// What alice's clients support, for a KeyMaterialRequest's
// requiredCapabilities: RFC 9420's extension and proposal types, the
// app_data_dictionary, basic and X.509 credentials.
const SUPPORTED = { extensions: [1, 2, 3, 4, 5, APP_DATA_DICTIONARY], proposals: [1, 2, 3, 4, 5, 6, 7], credentials: [1, 2] };

// uriDomain is the domain of a mimi:// URI, "" when it is none.
function uriDomain(s) {
  try {
    const u = new URL(s);
    return u.protocol === "mimi:" ? u.host.toLowerCase() : "";
  } catch {
    return "";
  }
}

// One MLS operation at a time per room: the HTTP server and the commands
// both change group state.
const locks = new Map();
async function withRoom(room, f) {
  const prev = locks.get(room) ?? Promise.resolve();
  let release;
  const mine = new Promise((r) => (release = r));
  const tail = prev.then(() => mine);
  locks.set(room, tail);
  await prev;
  try {
    return await f();
  } finally {
    release();
    if (locks.get(room) === tail) locks.delete(room);
  }
}

function leafIdentity(tree, leafIndex) {
  const n = tree[2 * leafIndex];
  if (!n || n.nodeType !== "leaf") return undefined;
  const c = n.leaf.credential;
  if (c.credentialType !== "basic") return undefined;
  try {
    return strictUtf8.decode(c.identity);
  } catch {
    return undefined;
  }
}

function memberUris(state) {
  const out = [];
  for (let i = 0; 2 * i < state.ratchetTree.length; i++) {
    const id = leafIdentity(state.ratchetTree, i);
    if (id !== undefined) out.push({ leaf: i, uri: id });
  }
  return out;
}

function room(roomUri) {
  const r = rooms.get(roomUri);
  if (!r) throw new Error(`no room ${roomUri}`);
  return r;
}

// ---------------------------------------------------------------------------
// HTTPS client.

function readPem(path, what) {
  if (typeof path !== "string") throw new Error(`${what}: path missing`);
  return fs.readFileSync(path);
}

function request(p, method, path, body, from) {
  const u = new URL(p.url);
  const headers = { Host: p.domain, From: from ?? `mimi@${DOMAIN}` };
  if (body !== undefined) {
    headers["Content-Type"] = "application/octet-stream";
    headers["Content-Length"] = String(body.length);
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (f, v) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f(v);
    };
    const req = https.request(
      {
        host: u.hostname.replace(/^\[|\]$/g, ""),
        port: u.port || 443,
        method,
        path,
        headers,
        servername: p.domain,
        cert: p.cert,
        key: p.key,
        ca: p.ca,
        rejectUnauthorized: true,
        agent: false,
      },
      (res) => {
        const chunks = [];
        let n = 0;
        res.on("data", (c) => {
          n += c.length;
          if (n > MAX_BODY) req.destroy(new Error("answer body too large"));
          else chunks.push(c);
        });
        res.on("end", () => settle(resolve, { status: res.statusCode, headers: res.headers, body: new Uint8Array(Buffer.concat(chunks)) }));
        res.on("error", (e) => settle(reject, e));
        res.on("close", () => settle(reject, new Error(`${method} ${path}: answer cut short`)));
      },
    );
    const timer = setTimeout(() => {
      const e = new Error(`${method} ${path}: no answer within ${TIMEOUT_MS} ms`);
      settle(reject, e);
      req.destroy(e);
    }, TIMEOUT_MS);
    req.on("error", (e) => settle(reject, e));
    req.end(body === undefined ? undefined : Buffer.from(body));
  });
}

// answerBody returns a 200 answer's body, which must be
// application/octet-stream (contract point 2).
function answerBody(what, res) {
  if (res.status !== 200) throw httpError(what, res);
  const type = (res.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/octet-stream") throw new Error(`${what}: answer Content-Type ${JSON.stringify(res.headers["content-type"])}, want application/octet-stream`);
  return res.body;
}

const ENDPOINTS = {
  keyMaterial: "targetUser",
  update: "roomId",
  notify: "roomId",
  submitMessage: "roomId",
  groupInfo: "roomId",
  requestConsent: "targetDomain",
  updateConsent: "requesterDomain",
  identifierQuery: "domain",
  reportAbuse: "roomId",
  proxyDownload: "downloadUrl",
};

function peer(name) {
  const p = peers.get(name);
  if (!p) throw new Error(`no peer ${name}`);
  return p;
}

async function directory(p) {
  if (p.directory) return p.directory;
  const prefix = new URL(p.url).pathname.replace(/\/+$/, "");
  const res = await request(p, "GET", `${prefix}/.well-known/mimi-protocol-directory`);
  if (res.status !== 200) throw new Error(`directory: HTTP ${res.status}`);
  let d;
  try {
    d = JSON.parse(Buffer.from(res.body).toString("utf8"));
  } catch (e) {
    throw new Error(`directory: not JSON: ${e.message}`);
  }
  if (d === null || typeof d !== "object" || Array.isArray(d)) throw new Error("directory: not a JSON object");
  for (const k of Object.keys(ENDPOINTS)) {
    const t = d[k];
    if (typeof t !== "string" || !/^https:\/\/[^/]+\//.test(t)) throw new Error(`directory: ${k} missing or not an https URL template`);
  }
  p.directory = d;
  return d;
}

// endpointPath fills a directory template and keeps its path: requests go
// to the peer's configured address whatever host the template names.
async function endpointPath(p, endpoint, param) {
  const d = await directory(p);
  const t = d[endpoint];
  if (typeof t !== "string") throw new Error(`directory has no ${endpoint}`);
  const path = t.replace(/^https:\/\/[^/]+/, "");
  const filled = path.replace(/\{[^}]*\}/, encodeURIComponent(param));
  if (filled === path) throw new Error(`${endpoint} template ${t} has no parameter`);
  return filled;
}

async function post(p, endpoint, param, body, from) {
  const path = await endpointPath(p, endpoint, param);
  const res = await request(p, "POST", path, body, from);
  log(`POST ${path} -> ${res.status}`);
  return res;
}

function httpError(what, res) {
  const text = Buffer.from(res.body).toString("utf8").slice(0, 300);
  return new Error(`${what}: HTTP ${res.status} ${text}`);
}

// ---------------------------------------------------------------------------
// HTTPS server (this provider as the hub of its rooms).

class HttpError extends Error {
  constructor(status, msg, body) {
    super(msg);
    this.status = status;
    this.body = body;
  }
}

function certDnsNames(cert) {
  const san = cert?.subjectaltname ?? "";
  return san
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4).toLowerCase());
}

// authenticate returns the source domain, checked against the certificate.
function authenticate(req) {
  const from = req.headers.from;
  const m = typeof from === "string" ? /^mimi@([^@\s]+)$/.exec(from.trim()) : null;
  if (!m) throw new HttpError(403, `From header ${JSON.stringify(from)} is not mimi@<domain>`);
  const domain = m[1].toLowerCase();
  const names = certDnsNames(req.socket.getPeerCertificate());
  if (!names.includes(domain)) throw new HttpError(403, `From domain ${domain} is not a DNS name of the client certificate (${names.join(" ")})`);
  const host = (req.headers.host ?? "").toLowerCase().replace(/:\d+$/, "");
  if (host !== DOMAIN) throw new HttpError(421, `Host ${JSON.stringify(req.headers.host)} is not ${DOMAIN}`);
  return domain;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error("request body timed out")));
    req.on("data", (c) => {
      n += c.length;
      if (n > MAX_BODY) {
        reject(new HttpError(413, "body too large"));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(new Uint8Array(Buffer.concat(chunks))));
    req.on("error", reject);
  });
}

function directoryDocument() {
  const d = {};
  for (const [k, param] of Object.entries(ENDPOINTS)) d[k] = `${serverUrl}/v1/${k}/{${param}}`;
  return d;
}

function pathParam(seg) {
  try {
    return decodeURIComponent(seg);
  } catch {
    throw new HttpError(400, `path parameter ${seg} is not valid percent-encoding`);
  }
}

async function handleSubmit(roomUri, body, source) {
  if (!rooms.has(roomUri)) throw new HttpError(404, `no room ${roomUri}`);
  let req;
  try {
    req = decodeSubmitMessageRequest(body);
  } catch (e) {
    throw new HttpError(400, e.message);
  }
  return withRoom(roomUri, async () => {
    const r = rooms.get(roomUri);
    const state = r.state;
    const pm = req.msg.privateMessage;
    const notAllowed = (status, why) => new HttpError(status, why, encodeSubmitMessageResponse(1));
    if (!equalBytes(pm.groupId, state.groupContext.groupId)) throw notAllowed(400, "PrivateMessage is for another group");
    const current = state.groupContext.epoch;
    if (pm.epoch > current) throw notAllowed(400, `epoch ${pm.epoch} is ahead of the hub's ${current}`);
    const receiver = receiverFor(state, pm);
    if (!receiver) throw new HttpError(409, `epoch ${pm.epoch} too old`, encodeSubmitMessageResponse(2, current));
    if (!memberUris(state).some((m) => m.uri === req.sendingUri)) throw notAllowed(403, `${req.sendingUri} is not a member of ${roomUri}`);
    let from;
    try {
      from = await sentBy(pm, receiver);
    } catch (e) {
      throw notAllowed(400, e.message);
    }
    let result;
    try {
      result = await processMessage(req.msg, state, emptyPskIndex, acceptAll, impl);
    } catch (e) {
      throw notAllowed(400, `does not decrypt: ${e.message}`);
    }
    r.state = result.newState;
    result.consumed.forEach(zeroOutUint8Array);
    if (result.kind !== "applicationMessage") throw notAllowed(400, "not an application message");
    if (from.uri !== req.sendingUri) throw notAllowed(403, `sent from leaf ${from.leaf} (${from.uri}), not ${req.sendingUri}`);
    let rec;
    try {
      rec = readContent(roomUri, req.sendingUri, source, result.message);
    } catch (e) {
      throw notAllowed(400, e.message);
    }
    keep([rec]);
    return { status: 200, body: encodeSubmitMessageResponse(0, Date.now()) };
  });
}

// receiverFor returns what opens a PrivateMessage of pm's epoch in state:
// the current epoch's or one ts-mls still keeps; undefined for older ones.
function receiverFor(state, pm) {
  if (pm.epoch === state.groupContext.epoch) return { senderDataSecret: state.keySchedule.senderDataSecret, ratchetTree: state.ratchetTree };
  return state.historicalReceiverData.get(pm.epoch);
}

// sentBy decrypts pm's sender data: its leaf and that leaf's identity.
async function sentBy(pm, receiver) {
  let senderData;
  try {
    senderData = await decryptSenderData(pm, receiver.senderDataSecret, impl);
  } catch (e) {
    throw new Error(`sender data does not decrypt: ${e.message}`);
  }
  if (!senderData) throw new Error("sender data does not decrypt");
  return { leaf: senderData.leafIndex, uri: leafIdentity(receiver.ratchetTree, senderData.leafIndex) };
}

// readContent decodes the MIMI content sendingUri sent in roomUri, whose
// sender and room extensions must be theirs, into an entry of received.
function readContent(roomUri, sendingUri, source, plaintext) {
  const content = decodeContent(plaintext);
  if (content.sender !== undefined && content.sender !== sendingUri) throw new Error(`content sender ${content.sender} is not ${sendingUri}`);
  if (content.room !== undefined && content.room !== roomUri) throw new Error(`content room ${content.room} is not ${roomUri}`);
  const sender = content.sender ?? sendingUri;
  const id = messageId(sender, content.room ?? roomUri, plaintext, content.salt);
  const rec = {
    room: roomUri,
    sender,
    sendingUri,
    source,
    contentType: content.body.contentType ?? "",
    text: firstText(content.body) ?? null,
    id: hex(id),
    statuses: [],
  };
  if (content.inReplyTo) rec.inReplyTo = hex(content.inReplyTo);
  if (content.body.cardinality === 1 && baseType(content.body.contentType) === TYPE_STATUS) {
    rec.statuses = decodeStatusReport(content.body.content);
  }
  return rec;
}

function keep(recs) {
  for (const rec of recs) {
    received.push(rec);
    log(`message ${rec.id} from ${rec.sender} in ${rec.room}`);
  }
}

function publicAuthenticatedContent(msg) {
  return { wireformat: "mls_public_message", content: msg.publicMessage.content, auth: msg.publicMessage.auth };
}

async function handleUpdate(roomUri, body) {
  if (!rooms.has(roomUri)) throw new HttpError(404, `no room ${roomUri}`);
  let bundle;
  try {
    bundle = decodeHandshakeBundle(body);
  } catch (e) {
    throw new HttpError(400, e.message);
  }
  return withRoom(roomUri, async () => {
    const r = rooms.get(roomUri);
    const current = r.state.groupContext.epoch;
    const all = [bundle.first, ...(bundle.moreProposals ?? [])];
    for (const m of all) {
      const c = m.msg.publicMessage.content;
      if (!equalBytes(c.groupId, r.state.groupContext.groupId)) {
        throw new HttpError(400, "handshake for another group", encodeUpdateRoomResponse(2, "handshake message for another group"));
      }
      if (c.epoch !== current) {
        throw new HttpError(409, `epoch ${c.epoch}, hub at ${current}`, encodeUpdateRoomResponse(1, `hub is at epoch ${current}`, current));
      }
      const s = c.sender;
      if (s.senderType !== "member" || leafIdentity(r.state.ratchetTree, s.leafIndex) === undefined) {
        throw new HttpError(403, "sender is not a member", encodeUpdateRoomResponse(2, "sender is not a member of the group"));
      }
    }
    let state = r.state;
    for (const m of all) {
      try {
        const res = await processMessage(m.msg, state, emptyPskIndex, acceptAll, impl);
        state = res.newState;
        res.consumed.forEach(zeroOutUint8Array);
      } catch (e) {
        if (bundle.contentType === "commit") {
          throw new HttpError(400, `commit refused: ${e.message}`, encodeUpdateRoomResponse(2, `commit refused: ${e.message}`));
        }
        const ref = await makeProposalRef(publicAuthenticatedContent(m.msg), impl.hash);
        throw new HttpError(400, `proposal refused: ${e.message}`, encodeUpdateRoomResponse(3, `proposal refused: ${e.message}`, [ref]));
      }
    }
    r.state = state;
    log(`${bundle.contentType} applied in ${roomUri}, epoch ${state.groupContext.epoch}`);
    return { status: 200, body: encodeUpdateRoomResponse(0, "", Date.now()) };
  });
}

async function handle(req, res) {
  let status = 500;
  let body;
  let type = "text/plain; charset=utf-8";
  let why = "";
  try {
    const path = (req.url ?? "").split("?")[0];
    const source = authenticate(req);
    const data = await readBody(req);
    if (path === "/.well-known/mimi-protocol-directory") {
      if (req.method !== "GET") throw new HttpError(405, "GET only");
      status = 200;
      type = "application/json";
      body = utf8(JSON.stringify(directoryDocument()));
    } else {
      const m = /^\/v1\/([A-Za-z]+)\/([^/]+)$/.exec(path);
      if (!m || !(m[1] in ENDPOINTS)) throw new HttpError(404, `no endpoint ${path}`);
      const wantMethod = m[1] === "proxyDownload" ? "GET" : "POST";
      if (req.method !== wantMethod) throw new HttpError(405, `${wantMethod} only`);
      const param = pathParam(m[2]);
      let out;
      if (m[1] === "submitMessage") out = await handleSubmit(param, data, source);
      else if (m[1] === "update") out = await handleUpdate(param, data);
      else if (m[1] === "updateConsent") out = handleUpdateConsent(param, data, source);
      else if (m[1] === "identifierQuery") out = handleIdentifierQuery(param, data);
      else if (m[1] === "keyMaterial") out = await handleKeyMaterial(param, data, source);
      else if (m[1] === "notify") out = await handleNotify(param, data, source);
      else throw new HttpError(501, `${m[1]} is not served by this peer`);
      status = out.status;
      body = out.body;
      type = "application/octet-stream";
    }
  } catch (e) {
    if (e instanceof HttpError) {
      status = e.status;
      why = e.message;
      if (e.body !== undefined) {
        body = e.body;
        type = "application/octet-stream";
      } else body = utf8(e.message);
    } else {
      status = 500;
      why = String(e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : e);
      body = utf8(why);
    }
  }
  log(`${req.method} ${req.url} -> ${status}${why ? ` (${why})` : ""}`);
  if (!res.headersSent) {
    res.writeHead(status, { "Content-Type": type, "Content-Length": String(body ? body.length : 0) });
    res.end(body ? Buffer.from(body) : undefined);
  }
}

// handleUpdateConsent takes a target's provider's answer to a consent
// request of alice's: a grant's KeyPackages go with those keyMaterial
// fetched for the room.
function handleUpdateConsent(requesterDomain, body, source) {
  if (requesterDomain !== DOMAIN) throw new HttpError(404, `updateConsent for ${requesterDomain}`);
  let c;
  try {
    c = decodeConsentEntry(body);
  } catch (e) {
    throw new HttpError(400, e.message);
  }
  if (c.requester !== ALICE) throw new HttpError(400, `consent for requester ${c.requester}`);
  if (new URL(c.target).host !== source) throw new HttpError(403, `${source} answers for ${c.target}`);
  if (c.room !== undefined && c.keyPackages.length > 0) fetched.set(c.room, [...(fetched.get(c.room) ?? []), ...c.keyPackages]);
  consents.push({ operation: c.operation, requester: c.requester, target: c.target, room: c.room ?? null, keyPackages: c.keyPackages.length });
  return { status: 201, body: new Uint8Array(0) };
}

// handleIdentifierQuery answers a phone(4) query for a number alice owns
// with her URI; any other query is notFound.
function handleIdentifierQuery(domain, body) {
  if (domain.toLowerCase() !== DOMAIN) throw new HttpError(404, `identifierQuery for domain ${domain}`);
  let elements;
  try {
    elements = decodeIdentifierRequest(body);
  } catch (e) {
    throw new HttpError(400, e.message);
  }
  const found = elements.length > 0 && elements.every((q) => q.searchType === 4 && owned.has(q.value));
  return { status: 200, body: found ? encodeIdentifierResponse(0, [ALICE]) : encodeIdentifierResponse(1, []) };
}

// handleKeyMaterial hands out a fresh KeyPackage of each of alice's
// clients to a requester of the source's domain whose signature verifies;
// the private parts are kept for the Welcome.
async function handleKeyMaterial(target, body, source) {
  let req;
  try {
    req = decodeKeyMaterialRequest(body);
  } catch (e) {
    throw new HttpError(400, e.message);
  }
  if (req.targetUser !== target) throw new HttpError(400, `targetUser ${req.targetUser} is not the path's ${target}`);
  if (uriDomain(req.requestingUser) !== source) throw new HttpError(403, `${source} asks as ${req.requestingUser}`);
  if (req.credential.type === 1 && !equalBytes(req.credential.identity, utf8(req.requestingUser))) {
    throw new HttpError(403, `requesterCredential does not name ${req.requestingUser}`);
  }
  let signed = false;
  try {
    signed = await impl.signature.verify(req.signatureKey, signContent("KeyMaterialRequestTBS", req.tbs), req.signature);
  } catch (e) {
    log(`keyMaterial signature: ${e.message}`);
  }
  if (!signed) throw new HttpError(403, "key_material_request_signature does not verify under requesterSignatureKey");
  if (target !== ALICE) return { status: 200, body: encodeKeyMaterialResponse(4, target, []) }; // userUnknown
  const mine = await aliceClients();
  const compatible = req.cipherSuites.includes(1) && Object.entries(req.required).every(([k, types]) => types.every((t) => SUPPORTED[k].includes(t)));
  if (!compatible) return { status: 200, body: encodeKeyMaterialResponse(3, ALICE, mine.map((c) => ({ status: 2, uri: c.uri }))) };
  const out = [];
  for (const c of mine) {
    const kp = await generateKeyPackageWithKey({ credentialType: "basic", identity: utf8(kpIdentity) }, clientCapabilities(), defaultLifetime, [], c, impl);
    handedOut.set(hex(await makeKeyPackageRef(kp.publicPackage, impl.hash)), { uri: c.uri, ...kp });
    out.push({ status: 0, uri: c.uri, keyPackage: kp.publicPackage });
  }
  log(`keyMaterial: ${out.length} KeyPackages of alice for ${req.requestingUser} in ${req.roomId}`);
  return { status: 200, body: encodeKeyMaterialResponse(0, ALICE, out) };
}

// handleNotify takes FanoutMessages from the hub of a room alice's clients
// are in (or join by its Welcome). The whole body applies or nothing does;
// a body seen before is answered 201 again and not applied twice.
async function handleNotify(roomUri, body, source) {
  if (uriDomain(roomUri) !== source) throw new HttpError(403, `${source} is not the hub of ${roomUri}`);
  let msgs;
  try {
    msgs = decodeNotify(body);
  } catch (e) {
    throw new HttpError(400, e.message);
  }
  const digest = crypto.createHash("sha256").update(body).digest("hex");
  const created = { status: 201, body: new Uint8Array(0) };
  return withRoom(roomUri, async () => {
    const f = followed.get(roomUri);
    if (f?.seen.has(digest)) {
      log(`notify for ${roomUri} seen before`);
      return created;
    }
    if (!f && msgs[0].msg.wireformat !== "mls_welcome") throw new HttpError(404, `no room ${roomUri}`);
    const t = { clients: f ? f.clients : [], used: [], consumed: [], recs: [] };
    try {
      for (const m of msgs) {
        if (m.msg.wireformat === "mls_welcome") await joinRoom(t, m);
        else if (m.contentType === "application") await openApplication(t, roomUri, source, m.msg);
        else await applyHandshake(t, m);
      }
    } catch (e) {
      throw new HttpError(400, e.message);
    }
    const entry = f ?? { hub: source, seen: new Set() };
    entry.clients = t.clients;
    entry.seen.add(digest);
    followed.set(roomUri, entry);
    t.used.forEach((ref) => handedOut.delete(ref));
    t.consumed.forEach(zeroOutUint8Array);
    keep(t.recs);
    return created;
  });
}

// joinRoom joins every client of alice whose KeyPackage the Welcome names.
async function joinRoom(t, m) {
  if (m.tree.kind !== 1) throw new Error(`Welcome with ratchet tree representation ${m.tree.kind}: this peer needs full(1)`);
  const joined = [];
  for (const s of m.msg.welcome.secrets) {
    const ref = hex(s.newMember);
    const kp = handedOut.get(ref);
    if (!kp || t.used.includes(ref)) continue;
    const state = await joinGroup(m.msg.welcome, kp.publicPackage, kp.privatePackage, emptyPskIndex, impl, m.tree.tree);
    if (t.clients.length > 0 && !equalBytes(state.groupContext.groupId, t.clients[0].state.groupContext.groupId)) {
      throw new Error("Welcome into another group than the room's");
    }
    t.used.push(ref);
    joined.push({ uri: kp.uri, state });
  }
  if (joined.length === 0) throw new Error("the Welcome names no KeyPackage alice's provider handed out");
  t.clients = [...t.clients, ...joined];
  log(`joined ${joined.map((c) => c.uri).join(" ")}, epoch ${joined[0].state.groupContext.epoch}`);
}

// openApplication decrypts an application message with each client of
// alice and records its content once, sent by the identity of its leaf.
async function openApplication(t, roomUri, source, msg) {
  if (msg.wireformat !== "mls_private_message") throw new Error(`application message as ${msg.wireformat}`);
  const next = [];
  for (const c of t.clients) {
    const receiver = receiverFor(c.state, msg.privateMessage);
    if (!receiver) throw new Error(`epoch ${msg.privateMessage.epoch} is not kept by ${c.uri}`);
    const from = await sentBy(msg.privateMessage, receiver);
    const res = await processMessage(msg, c.state, emptyPskIndex, acceptAll, impl);
    if (res.kind !== "applicationMessage") throw new Error("not an application message");
    t.consumed.push(...res.consumed);
    if (next.length === 0) t.recs.push(readContent(roomUri, from.uri, source, res.message));
    next.push({ uri: c.uri, state: res.newState });
  }
  t.clients = next;
}

// applyHandshake applies a commit (after the external proposals stapled
// to it) or proposals with each client of alice.
async function applyHandshake(t, m) {
  const order = m.contentType === "commit" ? [...m.proposals, m.msg] : [m.msg, ...m.proposals];
  const next = [];
  for (const c of t.clients) {
    let state = c.state;
    for (const msg of order) {
      const res = await processMessage(msg, state, emptyPskIndex, acceptAll, impl);
      t.consumed.push(...res.consumed);
      state = res.newState;
    }
    next.push({ uri: c.uri, state });
  }
  t.clients = next;
  log(`${m.contentType} applied, epoch ${next[0]?.state.groupContext.epoch}`);
}

// ---------------------------------------------------------------------------
// Commands.

async function notify(p, roomUri, body) {
  const res = await post(p, "notify", roomUri, body);
  return { status: res.status, retryAfter: res.headers["retry-after"] ?? null, body: Buffer.from(res.body).toString("utf8").slice(0, 300) };
}

// sendContent encrypts one MIMI content message as alice: fanned out in a
// room she hosts, submitted to the hub in a room she follows (as her first
// client).
async function sendContent(req, build) {
  const hub = followed.get(req.room)?.hub;
  const p = peer(hub ?? req.peer);
  const salt = new Uint8Array(crypto.randomBytes(16));
  const { encoded, id, msg } = await withRoom(req.room, async () => {
    let r = hub === undefined ? room(req.room) : followed.get(req.room).clients[0];
    let sender = ALICE;
    if (req.asImpostor) {
      r = room(req.room).impostor;
      if (!r) throw new Error(`room ${req.room} has no impostor`);
      sender = r.uri;
    }
    const encoded = build(salt, sender);
    const id = messageId(sender, req.room, encoded, salt);
    const out = await createApplicationMessage(r.state, encoded, impl);
    r.state = out.newState;
    out.consumed.forEach(zeroOutUint8Array);
    return { encoded, id, msg: { version: "mls10", wireformat: "mls_private_message", privateMessage: out.privateMessage } };
  });
  if (hub !== undefined) return submitContent(req, p, encoded, id, msg);
  const fanout = fanoutApplication(Date.now(), msg);
  if (req.hold) return { id: hex(id), content: b64(encoded), notifyBody: b64(fanout) };
  const res = await notify(p, req.room, fanout);
  const answer = { status: res.status, id: hex(id), retryAfter: res.retryAfter, content: b64(encoded), notifyBody: b64(fanout) };
  if (res.status !== 201) answer.body = res.body;
  return answer;
}

// submitContent sends alice's message to the hub of a room she follows.
async function submitContent(req, p, encoded, id, msg) {
  const body = encodeSubmitMessageRequest(msg, req.sendingUri ?? ALICE);
  const answer = { id: hex(id), content: b64(encoded), submitBody: b64(body) };
  if (req.hold) return answer;
  const res = await post(p, "submitMessage", req.room, body);
  answer.status = res.status;
  if ((res.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase() === "application/octet-stream") {
    answer.response = decodeSubmitMessageResponse(res.body);
  } else answer.body = Buffer.from(res.body).toString("utf8").slice(0, 300);
  return answer;
}

const ops = {
  async listen({ cert, key, ca }) {
    if (server) throw new Error("already listening");
    serverTls = { cert: readPem(cert, "cert"), key: readPem(key, "key"), ca: readPem(ca, "ca") };
    server = https.createServer({ ...serverTls, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      handle(req, res).catch((e) => log(`handler: ${e}`));
    });
    server.headersTimeout = TIMEOUT_MS;
    server.requestTimeout = TIMEOUT_MS;
    server.on("tlsClientError", (e) => log(`TLS: ${e.message}`));
    await new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    serverUrl = `https://127.0.0.1:${server.address().port}`;
    log(`listening on ${serverUrl}`);
    return { url: serverUrl };
  },

  async peer({ domain, url, cert, key, ca }) {
    if (typeof domain !== "string" || typeof url !== "string") throw new Error("domain and url are required");
    new URL(url);
    peers.set(domain, { domain, url: url.replace(/\/+$/, ""), cert: readPem(cert, "cert"), key: readPem(key, "key"), ca: readPem(ca, "ca"), directory: undefined });
    return {};
  },

  async own({ phone }) {
    if (typeof phone !== "string" || !/^\+[1-9][0-9]{1,14}$/.test(phone)) throw new Error("phone must be +E.164");
    owned.add(phone);
    return {};
  },

  async clients({ n, identity }) {
    if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error("n must be 1 to 16");
    clientCount = n;
    kpIdentity = identity ?? ALICE;
    return {};
  },

  async identifierQuery(req) {
    const p = peer(req.peer);
    const res = await post(p, "identifierQuery", p.domain, encodeIdentifierRequest(4, req.phone));
    const d = decodeIdentifierResponse(answerBody("identifierQuery", res));
    return { code: d.code, uris: d.uris, profiles: d.profiles };
  },

  async keyMaterial(req) {
    const p = peer(req.peer);
    const a = await aliceIdentity();
    const body = await encodeKeyMaterialRequest(
      { requestingUser: ALICE, targetUser: req.target, roomId: req.room, signatureKey: a.publicKey, identity: a.credential.identity },
      a.signKey,
    );
    const res = await post(p, "keyMaterial", req.target, body);
    const d = decodeKeyMaterialResponse(answerBody("keyMaterial", res));
    const kps = fetched.get(req.room) ?? [];
    for (const c of d.clients) if (c.keyPackage) kps.push(c.keyPackage);
    fetched.set(req.room, kps);
    return { userStatus: d.userStatus, userUri: d.userUri, clients: d.clients.map((c) => ({ status: c.status, uri: c.uri })) };
  },

  async requestConsent(req) {
    const p = peer(req.peer);
    const body = encodeConsentEntry({ operation: req.operation ?? "request", requester: ALICE, target: req.target, room: req.room });
    const res = await post(p, "requestConsent", new URL(req.target).host, body);
    return { status: res.status, body: Buffer.from(res.body).toString("utf8").slice(0, 300) };
  },

  async consents() {
    const out = consents;
    consents = [];
    return { entries: out };
  },

  async createRoom(req) {
    const p = peer(req.peer);
    if (typeof req.room !== "string" || !req.room.startsWith(`mimi://${DOMAIN}/r/`)) throw new Error(`room must be mimi://${DOMAIN}/r/<name>`);
    if (rooms.has(req.room)) throw new Error(`room ${req.room} exists`);
    const kps = fetched.get(req.room) ?? [];
    if (kps.length === 0) throw new Error(`no KeyPackages fetched for ${req.room}`);
    const a = await aliceIdentity();
    const { welcomeFanout, epoch } = await withRoom(req.room, async () => {
      const own = await generateKeyPackageWithKey(a.credential, defaultCapabilities(), defaultLifetime, [], { signKey: a.signKey, publicKey: a.publicKey }, impl);
      const groupId = new Uint8Array(crypto.randomBytes(16));
      let state = await createGroup(groupId, own.publicPackage, own.privatePackage, [], impl);
      let impostor;
      if (req.impostor) {
        // A client this peer holds whose basic credential names someone
        // else: a hub that puts a false name in its tree.
        const keys = await impl.signature.keygen();
        impostor = { uri: req.impostor, kp: await generateKeyPackageWithKey({ credentialType: "basic", identity: utf8(req.impostor) }, defaultCapabilities(), defaultLifetime, [], keys, impl) };
      }
      const adds = impostor ? [...kps, impostor.kp.publicPackage] : kps;
      const c = await createCommit(
        { state, cipherSuite: impl },
        { extraProposals: adds.map((keyPackage) => ({ proposalType: "add", add: { keyPackage } })), wireAsPublicMessage: true, ratchetTreeExtension: false },
      );
      c.consumed.forEach(zeroOutUint8Array);
      state = c.newState;
      if (!c.welcome) throw new Error("commit made no Welcome");
      if (impostor) impostor.state = await joinGroup(c.welcome, impostor.kp.publicPackage, impostor.kp.privatePackage, emptyPskIndex, impl, state.ratchetTree);
      rooms.set(req.room, { state, peer: p.domain, impostor });
      fetched.delete(req.room);
      const welcome = { version: "mls10", wireformat: "mls_welcome", welcome: c.welcome };
      return { welcomeFanout: fanoutWelcome(Date.now(), welcome, state.ratchetTree), epoch: Number(state.groupContext.epoch) };
    });
    const res = await notify(p, req.room, welcomeFanout);
    const answer = { status: res.status, epoch };
    if (res.status !== 201) answer.body = res.body;
    return answer;
  },

  async send(req) {
    if (typeof req.text !== "string") throw new Error("text is required");
    const inReplyTo = req.inReplyTo ? unhex(req.inReplyTo, 32, "inReplyTo") : undefined;
    return sendContent(req, (salt, sender) =>
      encodeContent({ salt, inReplyTo, sender, room: req.room, disposition: 1, contentType: TYPE_PLAIN, content: utf8(req.text) }),
    );
  },

  async report(req) {
    const id = unhex(req.id, 32, "id");
    let status = req.status;
    if (typeof status === "string") status = STATUS_NAMES.indexOf(status);
    if (!isUint(status, 255)) throw new Error(`unknown status ${req.status}`);
    const report = encodeStatusReport([{ id, status }]);
    return sendContent(req, (salt) => encodeContent({ salt, sender: ALICE, room: req.room, disposition: 0, contentType: TYPE_STATUS, content: report }));
  },

  async commit(req) {
    const p = peer(req.peer);
    const { fanout, epoch } = await withRoom(req.room, async () => {
      const r = room(req.room);
      const remove = req.remove ?? [];
      const proposals = memberUris(r.state)
        .filter((m) => remove.includes(m.uri))
        .map((m) => ({ proposalType: "remove", remove: { removed: m.leaf } }));
      const c = await createCommit({ state: r.state, cipherSuite: impl }, { extraProposals: proposals, wireAsPublicMessage: true, ratchetTreeExtension: false });
      c.consumed.forEach(zeroOutUint8Array);
      r.state = c.newState;
      return { fanout: fanoutHandshake(Date.now(), c.commit), epoch: Number(r.state.groupContext.epoch) };
    });
    if (req.hold) return { epoch, notifyBody: b64(fanout) };
    const res = await notify(p, req.room, fanout);
    const answer = { status: res.status, epoch };
    if (res.status !== 201) answer.body = res.body;
    return answer;
  },

  async followerCommit(req) {
    const p = peer(req.peer);
    const f = followed.get(req.room);
    if (!f) throw new Error(`alice follows no room ${req.room}`);
    const c0 = f.clients[0];
    const { out, body } = await withRoom(req.room, async () => {
      const proposals = [];
      if (req.add) {
        const keys = await impl.signature.keygen();
        const kp = await generateKeyPackageWithKey({ credentialType: "basic", identity: utf8(req.add) }, clientCapabilities(), defaultLifetime, [], keys, impl);
        proposals.push({ proposalType: "add", add: { keyPackage: kp.publicPackage } });
        if (req.add === ALICE) {
          // A new client of alice's own: it joins from the commit's Welcome.
          handedOut.set(hex(await makeKeyPackageRef(kp.publicPackage, impl.hash)), { uri: `mimi://${DOMAIN}/d/alice/${f.clients.length + 1}`, ...kp });
        }
      }
      for (const m of memberUris(c0.state)) {
        if ((req.remove ?? []).includes(m.uri)) proposals.push({ proposalType: "remove", remove: { removed: m.leaf } });
      }
      const out = await createCommit({ state: c0.state, cipherSuite: impl }, { extraProposals: proposals, wireAsPublicMessage: true, ratchetTreeExtension: false });
      const groupInfo = await createGroupInfo(out.newState.groupContext, out.newState.confirmationTag, out.newState, [], impl);
      const body = concat([
        mlsMessageBytes(out.commit),
        w.optional(out.welcome ? encodeWelcome(out.welcome) : undefined),
        w.u8(1), // GroupInfoOption full
        encodeGroupInfo(groupInfo),
        encodeRatchetTreeOptionFull(out.newState.ratchetTree),
      ]);
      return { out, body };
    });
    // Not under the room's lock: the hub may notify alice's provider (the
    // Welcome of the commit) before it answers.
    const res = await post(p, "update", req.room, body);
    const answer = { status: res.status };
    try {
      Object.assign(answer, decodeUpdateRoomResponse(res.body));
    } catch (e) {
      answer.body = Buffer.from(res.body).toString("utf8").slice(0, 300);
    }
    if (res.status === 200 && answer.code === "success") {
      // The secrets a commit consumes are the old epoch's: wiped only once
      // the hub took the commit and alice left that epoch.
      await withRoom(req.room, async () => {
        out.consumed.forEach(zeroOutUint8Array);
        c0.state = out.newState;
      });
    }
    return answer;
  },

  async roomInfo(req) {
    const f = followed.get(req.room);
    if (f) {
      const state = f.clients[0].state;
      return { epoch: Number(state.groupContext.epoch), members: memberUris(state).map((m) => m.uri), pending: Object.keys(state.unappliedProposals).length, hub: f.hub, clients: f.clients.map((c) => c.uri) };
    }
    const r = room(req.room);
    return {
      epoch: Number(r.state.groupContext.epoch),
      members: memberUris(r.state).map((m) => m.uri),
      pending: Object.keys(r.state.unappliedProposals).length,
    };
  },

  async raw(req) {
    const p = peer(req.peer);
    if (!(req.endpoint in ENDPOINTS)) throw new Error(`unknown endpoint ${req.endpoint}`);
    const res = await post(p, req.endpoint, req.param ?? "", unb64(req.body ?? ""), req.from);
    return { status: res.status, body: b64(res.body) };
  },

  async received() {
    const out = received;
    received = [];
    return { messages: out };
  },

  async close() {
    if (server) {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
      server = undefined;
    }
    return { exit: true };
  },
};

const rl = readline.createInterface({ input: process.stdin, terminal: false });
for await (const line of rl) {
  if (line.trim() === "") continue;
  let answer;
  try {
    const req = JSON.parse(line);
    const op = Object.hasOwn(ops, req.op) ? ops[req.op] : undefined;
    if (!op) throw new Error(`unknown op ${req.op}`);
    answer = { ok: true, ...(await op(req)) };
  } catch (e) {
    answer = { ok: false, error: String(e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : e) };
  }
  const exit = answer.exit;
  delete answer.exit;
  if (exit) {
    process.stdout.write(JSON.stringify(answer) + "\n", () => process.exit(0));
    break;
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
if (server) server.close();
