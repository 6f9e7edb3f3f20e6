#!/usr/bin/env node
// kubesim judged by the real @kubernetes/client-node 1.4.0 on Node 20
// (KUBE_API.md §8, J1-J6; its behaviour is described in §1.7).
//
// Usage: node tests/acceptance/clientnode_test.mjs /path/to/kubesim [J1 J3 ...]
// (naming checks runs only those)
//
// The client is loaded from $MCF_NODE_MODULES (a node_modules folder, or an
// npm prefix holding one; default tests/.node/node_modules, where
// tests/acceptance/install-node-deps puts it).  Each check starts its own
// kubesim (--listen 127.0.0.1:0), runs under a watchdog, and stops kubesim
// with SIGTERM; a non-zero exit or a sanitizer report in kubesim's stderr
// fails that check.  Every wait has a deadline scaled by
// $MCF_TEST_TIMEOUT_SCALE.  Every check prints "ok NAME ..." or
// "FAIL NAME: why"; the run ends with "N passed, M failed" and exits 1 if
// anything failed.  A missing client is a failure, never a skip.
//
// J2-J4 drive kubesim's fault injection (§7: POST /_sim/faults with a rule,
// DELETE /_sim/faults[/{id}]) and count list and watch requests in
// GET /_sim/requests.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCALE = Number(process.env.MCF_TEST_TIMEOUT_SCALE || '1') || 1;
const START_DEADLINE = 20 * SCALE; // seconds to wait for "listening on"
const CHECK_DEADLINE = 60 * SCALE; // watchdog per check
const REQ_T = 10 * SCALE; // one API call or one awaited callback
const STOP_DEADLINE = 10 * SCALE; // SIGTERM -> exit
const QUIET = 2.5 * SCALE; // "nothing else happens" windows
const SETTLE = 0.3 * SCALE; // let stray callbacks arrive
const SANITIZER_MARKS = ['Sanitizer', 'runtime error:'];

const NS = 'default';
const CM_PATH = `/api/v1/namespaces/${NS}/configmaps`;
const MILO_G = 'resourcemanager.miloapis.com';
const MILO_V = 'v1alpha1';
const PROJECTS_PATH = `/apis/${MILO_G}/${MILO_V}/projects`;

class CheckFailed extends Error {}

function expect(cond, msg) {
	if (!cond) throw new CheckFailed(typeof msg === 'function' ? msg() : msg);
}

const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));

// Resolves like `p`, or rejects with CheckFailed after `secs`.
function within(p, secs, what) {
	let timer;
	const t = new Promise((_, rej) => {
		timer = setTimeout(() => rej(new CheckFailed(
			`${what}: no answer within ${secs.toFixed(1)} s`)), secs * 1000);
	});
	return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// Polls `pred` every 20 ms until it is true or `secs` pass.
async function waitFor(pred, secs, what) {
	const end = Date.now() + secs * 1000;
	for (;;) {
		const v = await pred();
		if (v) return v;
		if (Date.now() >= end) {
			throw new CheckFailed(`timed out after ${secs.toFixed(1)} s ` +
				`waiting for ${typeof what === 'function' ? what() : what}`);
		}
		await sleep(0.02);
	}
}

const rvNum = (rv) => {
	expect(typeof rv === 'string' && /^[0-9]+$/.test(rv),
		`resourceVersion ${JSON.stringify(rv)} is not a decimal string`);
	return BigInt(rv);
};

function errText(e) {
	if (e instanceof CheckFailed) return e.message;
	if (e && e.code !== undefined && e.body !== undefined) { // ApiException
		return `ApiException ${e.code}: ${JSON.stringify(e.body).slice(0, 400)}`;
	}
	if (e && e.statusCode !== undefined) return `HTTP ${e.statusCode} ${e.message}`;
	return e && e.stack ? e.stack : String(e);
}

// ---- the client -------------------------------------------------------------

async function loadClient() {
	const given = process.env.MCF_NODE_MODULES;
	const roots = given ?
		[given, path.join(given, 'node_modules')] :
		[path.resolve(HERE, '../.node/node_modules')];
	for (const root of roots) {
		const dir = path.join(root, '@kubernetes', 'client-node');
		const pj = path.join(dir, 'package.json');
		if (!fs.existsSync(pj)) continue;
		const meta = JSON.parse(fs.readFileSync(pj, 'utf8'));
		const k8s = await import(pathToFileURL(path.join(dir, meta.main || 'dist/index.js')).href);
		return { k8s, version: meta.version, dir };
	}
	throw new Error(`@kubernetes/client-node not found under ${roots.join(' or ')}; ` +
		'run tests/acceptance/install-node-deps (or set MCF_NODE_MODULES)');
}

function kubeConfig(k8s, url) {
	const kc = new k8s.KubeConfig();
	kc.loadFromOptions({ // §1.7: plain http needs skipTLSVerify
		clusters: [{ name: 'kubesim', server: url, skipTLSVerify: true }],
		users: [{ name: 'kubesim' }],
		contexts: [{ name: 'kubesim', cluster: 'kubesim', user: 'kubesim' }],
		currentContext: 'kubesim',
	});
	return kc;
}

// ---- kubesim process ----------------------------------------------------------

let simCounter = 0;

class Kubesim {
	constructor(binary, extra) {
		this.binary = binary;
		this.extra = extra || [];
		this.proc = null;
		this.exit = null;
		this.url = null;
		this.errPath = path.join(os.tmpdir(),
			`kubesim-clientnode-${process.pid}-${++simCounter}.stderr`);
	}

	async start() {
		const errFd = fs.openSync(this.errPath, 'w');
		try {
			this.proc = spawn(this.binary, ['--listen', '127.0.0.1:0', ...this.extra],
				{ stdio: ['ignore', 'pipe', errFd] });
		} finally {
			fs.closeSync(errFd);
		}
		this.exited = new Promise((resolve) => {
			this.proc.on('exit', (code, signal) => {
				this.exit = { code, signal };
				resolve();
			});
			this.proc.on('error', (e) => {
				this.exit = { code: null, signal: null, error: e };
				resolve();
			});
		});
		let buf = '';
		const line = await new Promise((resolve, reject) => {
			const timer = setTimeout(() => reject(new CheckFailed(
				`kubesim printed no 'listening on' line within ${START_DEADLINE} s ` +
				`(got ${JSON.stringify(buf)})`)), START_DEADLINE * 1000);
			const onData = (d) => {
				buf += d.toString('utf8');
				const nl = buf.indexOf('\n');
				if (nl >= 0) {
					clearTimeout(timer);
					this.proc.stdout.off('data', onData);
					this.proc.stdout.resume(); // drain anything else
					resolve(buf.slice(0, nl));
				}
			};
			this.proc.stdout.on('data', onData);
			this.exited.then(() => {
				clearTimeout(timer);
				reject(new CheckFailed(`kubesim exited before listening ` +
					`(${JSON.stringify(this.exit)}, stdout ${JSON.stringify(buf)}, ` +
					`stderr ${JSON.stringify(this.stderrText().slice(-2000))})`));
			});
		});
		const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
		expect(m, `unexpected first stdout line ${JSON.stringify(line)}`);
		this.url = m[1];
		return this.url;
	}

	stderrText() {
		try {
			return fs.readFileSync(this.errPath, 'utf8');
		} catch {
			return '';
		}
	}

	// Stops kubesim; returns a list of problems (empty if it exited 0
	// without a sanitizer report).
	async stop() {
		const problems = [];
		if (this.proc === null) return problems;
		if (this.exit !== null) {
			problems.push(`kubesim had already exited (${JSON.stringify(this.exit)}) before SIGTERM`);
		} else {
			this.proc.kill('SIGTERM');
			const timer = setTimeout(() => {
				problems.push(`kubesim ignored SIGTERM for ${STOP_DEADLINE} s (killed)`);
				this.proc.kill('SIGKILL');
			}, STOP_DEADLINE * 1000);
			await this.exited;
			clearTimeout(timer);
			if (this.exit.code !== 0 && problems.length === 0) {
				problems.push(`kubesim exited with ${this.exit.signal ?
					'signal ' + this.exit.signal : 'status ' + this.exit.code} after SIGTERM`);
			}
		}
		const err = this.stderrText();
		const mark = SANITIZER_MARKS.find((s) => err.includes(s));
		if (mark) problems.push(`kubesim stderr contains ${JSON.stringify(mark)}`);
		if (problems.length) {
			console.log(`---- kubesim stderr (tail) ----\n${err.slice(-4000)}\n---- end ----`);
		}
		fs.rmSync(this.errPath, { force: true });
		this.proc = null;
		return problems;
	}
}

// ---- raw HTTP for /_sim/ ----------------------------------------------------------

async function httpJson(method, url, body) {
	const init = { method, signal: AbortSignal.timeout(REQ_T * 1000) };
	if (body !== undefined) {
		init.body = JSON.stringify(body);
		init.headers = { 'Content-Type': 'application/json' };
	}
	const r = await fetch(url, init);
	const text = await r.text();
	let json;
	try {
		json = text ? JSON.parse(text) : null;
	} catch {
		json = text;
	}
	return { status: r.status, body: json };
}

async function simRequests(url, since = 0) {
	const { status, body } = await httpJson('GET', `${url}/_sim/requests?since=${since}`);
	expect(status === 200 && body && Array.isArray(body.items),
		() => `GET /_sim/requests: ${status} ${JSON.stringify(body)}`);
	return body.items;
}

async function lastSeq(url) {
	const items = await simRequests(url);
	return items.reduce((m, i) => Math.max(m, Number(i.seq) || 0), 0);
}

const isWatch = (r) => /(^|&)watch=(true|1)(&|$)/.test(r.query || '');
const queryParam = (r, k) => new URLSearchParams(r.query || '').get(k);
const onPath = (items, p) => items.filter((r) => r.method === 'GET' && r.path === p);
const listsOn = (items, p) => onPath(items, p).filter((r) => !isWatch(r));
const watchesOn = (items, p) => onPath(items, p).filter(isWatch);
const brief = (items) => JSON.stringify(items.map((r) =>
	`${r.method} ${r.path}${r.query ? '?' + r.query : ''} -> ${r.status}`));

// POST /_sim/faults (§7); returns the rule's id.
async function addFault(url, rule) {
	const { status, body } = await httpJson('POST', `${url}/_sim/faults`, rule);
	expect(status !== 404 && status !== 405,
		() => `POST /_sim/faults: ${status} ${JSON.stringify(body)}: this kubesim ` +
		'has no fault injection (KUBE_API.md §7)');
	expect((status === 200 || status === 201) && body && body.id !== undefined &&
		body.id !== null,
	() => `POST /_sim/faults ${JSON.stringify(rule)}: ${status} ${JSON.stringify(body)}, ` +
		'want 200 {"id":...}');
	return body.id;
}

// DELETE /_sim/faults (every rule): rules that have run out of hits may
// already be gone, so deleting them one by one could 404.
async function clearFaults(url) {
	const { status, body } = await httpJson('DELETE', `${url}/_sim/faults`);
	expect(status === 200 || status === 204,
		() => `DELETE /_sim/faults: ${status} ${JSON.stringify(body)}`);
}

// ---- informer recording -----------------------------------------------------------

// Records an informer's callbacks.  Errors while `paused` (the AbortError
// that stop() itself causes) are kept apart from real ones.
function record(ctx, inf) {
	const rec = { events: [], errors: [], ignored: [], connects: 0, paused: false };
	for (const ev of ['add', 'update', 'delete']) {
		inf.on(ev, (obj) => rec.events.push({
			ev, name: obj.metadata.name, rv: obj.metadata.resourceVersion, obj,
		}));
	}
	inf.on('error', (e) => (rec.paused ? rec.ignored : rec.errors).push(e));
	inf.on('connect', () => rec.connects++);
	rec.stop = async () => {
		rec.paused = true;
		await inf.stop();
		await sleep(SETTLE);
	};
	rec.start = async () => {
		rec.paused = false;
		await within(inf.start(), REQ_T, 'informer start()');
	};
	rec.find = (ev, name) => rec.events.find((e) => e.ev === ev && e.name === name);
	rec.summary = () => JSON.stringify(rec.events.map((e) => `${e.ev} ${e.name}@${e.rv}`));
	rec.errSummary = () => JSON.stringify(rec.errors.map(errText));
	ctx.cleanups.push(() => rec.stop());
	return rec;
}

// Waits until `path` has a watch request in the log after `since`.
async function waitWatch(url, p, since, what) {
	return waitFor(async () => {
		const w = watchesOn(await simRequests(url, since), p);
		return w.length ? w : null;
	}, REQ_T, what || `a watch request on ${p}`);
}

function cmInformer(ctx) {
	const core = ctx.kc.makeApiClient(ctx.k8s.CoreV1Api);
	const inf = ctx.k8s.makeInformer(ctx.kc, CM_PATH,
		() => core.listNamespacedConfigMap({ namespace: NS }));
	return { core, inf, rec: record(ctx, inf) };
}

const mergeHdr = (k8s) => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

// ---- J1: informer plus create / merge patch / JSON patch / delete ----------

async function checkJ1(ctx) {
	const { url, k8s } = ctx;
	const since = await lastSeq(url);
	const { core, inf, rec } = cmInformer(ctx);
	await rec.start();
	const listRV = inf.latestResourceVersion();
	await waitWatch(url, CM_PATH, since);

	const created = await within(core.createNamespacedConfigMap({
		namespace: NS, body: { metadata: { name: 'j1' }, data: { a: '1' } },
	}), REQ_T, 'create');
	const merged = await within(core.patchNamespacedConfigMap({
		name: 'j1', namespace: NS, body: { data: { b: '2' } },
	}, mergeHdr(k8s)), REQ_T, 'merge patch');
	const jsonp = await within(core.patchNamespacedConfigMap({
		name: 'j1', namespace: NS, body: [{ op: 'add', path: '/data/c', value: '3' }],
	}), REQ_T, 'JSON patch');
	await within(core.deleteNamespacedConfigMap({ name: 'j1', namespace: NS }),
		REQ_T, 'delete');

	await waitFor(() => rec.events.length >= 4, REQ_T,
		() => `4 callbacks (have ${rec.summary()}, errors ${rec.errSummary()})`);
	await sleep(SETTLE);
	const got = rec.events.map((e) => `${e.ev} ${e.name}`);
	const want = ['add j1', 'update j1', 'update j1', 'delete j1'];
	expect(JSON.stringify(got) === JSON.stringify(want),
		() => `callbacks ${rec.summary()}, want ${JSON.stringify(want)}`);
	const [a, u1, u2, d] = rec.events;
	const wantRV = [created, merged, jsonp].map((o) => o.metadata.resourceVersion);
	expect(a.rv === wantRV[0] && u1.rv === wantRV[1] && u2.rv === wantRV[2],
		() => `callback RVs ${rec.summary()}, want the writes' RVs ${JSON.stringify(wantRV)}`);
	const rvs = rec.events.map((e) => rvNum(e.rv));
	expect(rvs.every((v, i) => i === 0 || v > rvs[i - 1]),
		() => `callback RVs not increasing: ${rec.summary()}`);
	expect(JSON.stringify(u1.obj.data) === '{"a":"1","b":"2"}' &&
		JSON.stringify(u2.obj.data) === '{"a":"1","b":"2","c":"3"}',
	() => `update data ${JSON.stringify(u1.obj.data)}, ${JSON.stringify(u2.obj.data)}, ` +
		'want a,b then a,b,c');
	expect(rec.errors.length === 0, () => `error callbacks: ${rec.errSummary()}`);

	const items = await simRequests(url, since);
	const lists = listsOn(items, CM_PATH);
	const watches = watchesOn(items, CM_PATH);
	expect(lists.length === 1, () => `${lists.length} list requests, want 1: ${brief(onPath(items, CM_PATH))}`);
	expect(watches.length >= 1 && queryParam(watches[0], 'resourceVersion') === listRV,
		() => `watch requests ${brief(watches)}, want the first with resourceVersion=${listRV}`);
	return `add, update x2, delete at RVs ${rec.events.map((e) => e.rv).join(' < ')}; ` +
		`1 list, watch from ${listRV}`;
}

// ---- J2: watch closed after 1 s, for 5 s ---------------------------------------------

async function checkJ2(ctx) {
	const { url, k8s } = ctx;
	// Rules apply to watches that start after them: add it first.
	await addFault(url, {
		match: { verb: 'watch', resource: 'configmaps', namespace: NS },
		action: { watch: 'close', after_s: 1, mode: 'clean' },
		for_s: 5,
	});
	const since = await lastSeq(url);
	const { core, inf, rec } = cmInformer(ctx);
	await rec.start();
	await waitWatch(url, CM_PATH, since);
	const listRV = inf.latestResourceVersion();
	const writes = []; // [name, rv]
	const names = ['j2-a', 'j2-b', 'j2-c'];
	const t0 = Date.now();
	for (let i = 0; Date.now() - t0 < 5500; i++) {
		const name = names[i % names.length];
		const o = i < names.length ?
			await within(core.createNamespacedConfigMap({
				namespace: NS, body: { metadata: { name }, data: { i: String(i) } },
			}), REQ_T, `create ${name}`) :
			await within(core.patchNamespacedConfigMap({
				name, namespace: NS, body: { data: { i: String(i) } },
			}, mergeHdr(k8s)), REQ_T, `patch ${name}`);
		writes.push([name, o.metadata.resourceVersion]);
		await sleep(0.25);
	}
	await clearFaults(url);
	const last = await within(core.patchNamespacedConfigMap({
		name: 'j2-a', namespace: NS, body: { data: { last: 'yes' } },
	}, mergeHdr(k8s)), REQ_T, 'final patch');
	writes.push(['j2-a', last.metadata.resourceVersion]);

	const delivered = () => new Set(rec.events.map((e) => `${e.name}@${e.rv}`));
	const missing = () => writes.filter(([n, rv]) => !delivered().has(`${n}@${rv}`));
	try {
		await waitFor(() => missing().length === 0, REQ_T,
			() => `every write's RV to be delivered (missing ${JSON.stringify(missing())})`);
	} catch (e) {
		const items = await simRequests(url, since);
		throw new CheckFailed(`${e.message}; callbacks ${rec.summary()}; connects ` +
			`${rec.connects}; errors ${rec.errSummary()}; requests ${brief(onPath(items, CM_PATH))}`);
	}
	await sleep(SETTLE);
	const items = await simRequests(url, since);
	const lists = listsOn(items, CM_PATH);
	const watches = watchesOn(items, CM_PATH);
	expect(rec.connects >= 4,
		() => `connect fired ${rec.connects} times, want >= 4 (1 s closes over 5 s); ` +
		`watches ${brief(watches)}`);
	expect(lists.length === 1,
		() => `${lists.length} list requests, want 1: ${brief(onPath(items, CM_PATH))}`);
	const noRV = watches.filter((w) => !/^[1-9][0-9]*$/.test(queryParam(w, 'resourceVersion') || ''));
	expect(noRV.length === 0, () => `watches without a resume RV: ${brief(noRV)}`);
	const rvs = rec.events.map((e) => rvNum(e.rv));
	expect(rvs.every((v, i) => i === 0 || v > rvs[i - 1]),
		() => `callback RVs not increasing (replayed events?): ${rec.summary()}`);
	expect(rec.events.length === writes.length,
		() => `${rec.events.length} callbacks for ${writes.length} writes: ${rec.summary()}`);
	expect(rec.errors.length === 0, () => `error callbacks: ${rec.errSummary()}`);
	return `${writes.length} writes all delivered over ${watches.length} watches ` +
		`(connect x${rec.connects}); 1 list at ${listRV}`;
}

// ---- J3: expired watch (event form, then HTTP form) with a deletion in the gap ----

async function checkJ3(ctx) {
	const { url } = ctx;
	const { core, inf, rec } = cmInformer(ctx);
	const victims = { event: 'j3-gone-event', http: 'j3-gone-http' };
	const lastRV = {};
	for (const name of ['j3-keep', victims.event, victims.http]) {
		const o = await within(core.createNamespacedConfigMap({
			namespace: NS, body: { metadata: { name }, data: { v: '1' } },
		}), REQ_T, `create ${name}`);
		lastRV[name] = o.metadata.resourceVersion;
	}
	const since0 = await lastSeq(url);
	await rec.start();
	await waitWatch(url, CM_PATH, since0);
	await waitFor(() => rec.events.length >= 3, REQ_T, () => `3 adds (have ${rec.summary()})`);

	const out = [];
	for (const form of ['event', 'http']) {
		const victim = victims[form];
		// The gap: the informer is stopped while the object goes away.
		await rec.stop();
		const oldRV = inf.latestResourceVersion();
		await within(core.deleteNamespacedConfigMap({ name: victim, namespace: NS }),
			REQ_T, `delete ${victim}`);
		await addFault(url, {
			match: { verb: 'watch', resource: 'configmaps', namespace: NS },
			action: { watch: 'expire', form },
			count: 1,
		});
		const since = await lastSeq(url);
		const n0 = rec.events.length;
		await rec.start();
		try {
			await waitFor(() => rec.events.slice(n0).some((e) => e.ev === 'delete'), REQ_T,
				`a delete callback for ${victim}`);
		} catch (e) {
			const items = await simRequests(url, since);
			throw new CheckFailed(`${form} form: ${e.message}; callbacks since ` +
				`${JSON.stringify(rec.events.slice(n0).map((x) => `${x.ev} ${x.name}@${x.rv}`))}; ` +
				`errors ${rec.errSummary()}; requests ${brief(onPath(items, CM_PATH))}`);
		}
		await waitWatch(url, CM_PATH, since, 'the watch after the relist');
		await sleep(SETTLE);
		await clearFaults(url);
		const items = await simRequests(url, since);
		const reqs = onPath(items, CM_PATH);
		const lists = listsOn(items, CM_PATH);
		const watches = watchesOn(items, CM_PATH);
		const fresh = rec.events.slice(n0);
		expect(fresh.length === 1 && fresh[0].ev === 'delete' && fresh[0].name === victim,
			() => `${form} form: callbacks ${JSON.stringify(fresh.map((x) => `${x.ev} ${x.name}@${x.rv}`))}, ` +
			`want exactly one delete of ${victim}`);
		// A relist's delete carries the cached object; a watch DELETED the delete's RV.
		expect(fresh[0].rv === lastRV[victim],
			() => `${form} form: delete callback at RV ${fresh[0].rv}, want the cached ` +
			`${lastRV[victim]} (a relist, not a DELETED event)`);
		expect(lists.length === 1,
			() => `${form} form: ${lists.length} list requests after the expiry, want 1: ${brief(reqs)}`);
		expect(watches.length >= 2 && isWatch(reqs[0]) &&
			queryParam(reqs[0], 'resourceVersion') === oldRV &&
			Number(reqs[0].status) === (form === 'http' ? 410 : 200),
		() => `${form} form: requests ${brief(reqs)}, want a watch from ${oldRV} answered ` +
			`${form === 'http' ? 410 : 200}, a list, a watch`);
		expect(reqs.indexOf(lists[0]) > 0 && reqs.indexOf(lists[0]) < reqs.length - 1,
			() => `${form} form: list not between watches: ${brief(reqs)}`);
		expect(rec.errors.length === 0, () => `${form} form: error callbacks: ${rec.errSummary()}`);
		out.push(`${form}: watch from ${oldRV} -> ${reqs[0].status}, relist, delete ${victim}`);
	}
	// Still watching: a later write arrives.
	const n1 = rec.events.length;
	const o = await within(core.patchNamespacedConfigMap({
		name: 'j3-keep', namespace: NS, body: { data: { v: '2' } },
	}, mergeHdr(ctx.k8s)), REQ_T, 'patch j3-keep');
	await waitFor(() => rec.events.slice(n1).some((e) => e.ev === 'update' &&
		e.rv === o.metadata.resourceVersion), REQ_T, 'the update after both expiries');
	return out.join('; ');
}

// ---- J4: 500 and 429 on the watch ---------------------------------------------

async function checkJ4(ctx) {
	const { url } = ctx;
	const out = [];
	for (const action of [{ status: 500 }, { status: 429, retry_after: 1 }]) {
		const code = action.status;
		await addFault(url, {
			match: { verb: 'watch', resource: 'configmaps', namespace: NS },
			action, count: 1,
		});
		const since = await lastSeq(url);
		const { core, rec } = cmInformer(ctx);
		await rec.start();
		await waitFor(() => rec.errors.length >= 1, REQ_T,
			() => `an error callback for the ${code} (callbacks ${rec.summary()})`);
		await sleep(QUIET); // a client that retried would have done so by now
		let items = await simRequests(url, since);
		const reqs = onPath(items, CM_PATH);
		expect(rec.errors.length === 1,
			() => `${code}: ${rec.errors.length} error callbacks, want 1: ${rec.errSummary()}`);
		expect(rec.errors[0].statusCode === code,
			() => `${code}: error callback got ${rec.errSummary()}, want statusCode ${code}`);
		expect(reqs.length === 2 && !isWatch(reqs[0]) && isWatch(reqs[1]) &&
			Number(reqs[1].status) === code,
		() => `${code}: requests ${brief(reqs)}, want a list and one watch answered ${code}, ` +
			'then nothing until start()');
		await clearFaults(url);

		const since2 = await lastSeq(url);
		const name = `j4-${code}`;
		const o = await within(core.createNamespacedConfigMap({
			namespace: NS, body: { metadata: { name }, data: { v: '1' } },
		}), REQ_T, `create ${name}`);
		await rec.start();
		await waitFor(() => rec.find('add', name), REQ_T,
			() => `${code}: the add of ${name} after start() (callbacks ${rec.summary()})`);
		expect(rec.find('add', name).rv === o.metadata.resourceVersion,
			() => `${code}: add of ${name} at ${rec.find('add', name).rv}, want ${o.metadata.resourceVersion}`);
		items = await simRequests(url, since2);
		expect(watchesOn(items, CM_PATH).length >= 1,
			() => `${code}: no watch after start(): ${brief(onPath(items, CM_PATH))}`);
		expect(rec.errors.length === 1, () => `${code}: more errors after start(): ${rec.errSummary()}`);
		await rec.stop();
		out.push(`${code}: one error callback, no retry in ${QUIET} s, resumes on start()`);
	}
	return out.join('; ');
}

// ---- J5: the patch content type ------------------------------------------------

async function checkJ5(ctx) {
	const { k8s } = ctx;
	const core = ctx.kc.makeApiClient(k8s.CoreV1Api);
	const created = await within(core.createNamespacedConfigMap({
		namespace: NS, body: { metadata: { name: 'j5' }, data: { a: '1' } },
	}), REQ_T, 'create');
	let err = null;
	try {
		await within(core.patchNamespacedConfigMap({
			name: 'j5', namespace: NS, body: { data: { b: '2' } },
		}), REQ_T, 'patch without a Content-Type');
	} catch (e) {
		if (e instanceof CheckFailed) throw e;
		err = e;
	}
	expect(err !== null, 'an object body sent as application/json-patch+json was accepted, want 400');
	expect(err.code === 400, () => `patch without a header: ${errText(err)}, want 400`);
	const after = await within(core.readNamespacedConfigMap({ name: 'j5', namespace: NS }),
		REQ_T, 'read');
	expect(after.metadata.resourceVersion === created.metadata.resourceVersion,
		() => `the rejected patch changed the object: RV ${created.metadata.resourceVersion} -> ` +
		`${after.metadata.resourceVersion}`);
	const r = await within(core.patchNamespacedConfigMapWithHttpInfo({
		name: 'j5', namespace: NS, body: { data: { b: '2' } },
	}, mergeHdr(k8s)), REQ_T, 'merge patch');
	expect(r.httpStatusCode === 200, () => `merge patch: status ${r.httpStatusCode}, want 200`);
	expect(JSON.stringify(r.data.data) === '{"a":"1","b":"2"}',
		() => `merge patch: data ${JSON.stringify(r.data.data)}, want a=1,b=2`);
	let msg = err.body;
	try {
		msg = (typeof msg === 'string' ? JSON.parse(msg) : msg).message;
	} catch {
		// keep the raw body
	}
	return `no header: 400 ${JSON.stringify(String(msg).slice(0, 100))}; ` +
		'MergePatch header: 200';
}

// ---- J6: Project informer and a status update ---------------------------------------

async function checkJ6(ctx) {
	const { url, k8s, kc } = ctx;
	const custom = kc.makeApiClient(k8s.CustomObjectsApi);
	const gvp = { group: MILO_G, version: MILO_V, plural: 'projects' };
	await within(custom.createClusterCustomObject({
		...gvp,
		body: {
			apiVersion: `${MILO_G}/${MILO_V}`, kind: 'Project', metadata: { name: 'j6' },
			spec: { ownerRef: { kind: 'Organization', name: 'org1' } },
		},
	}), REQ_T, 'create project');
	const since = await lastSeq(url);
	const inf = k8s.makeInformer(kc, PROJECTS_PATH, () => custom.listClusterCustomObject(gvp));
	const rec = record(ctx, inf);
	await rec.start();
	await waitFor(() => rec.find('add', 'j6'), REQ_T,
		() => `the add of project j6 (callbacks ${rec.summary()}, errors ${rec.errSummary()})`);
	await waitWatch(url, PROJECTS_PATH, since);

	const cur = await within(custom.getClusterCustomObject({ ...gvp, name: 'j6' }),
		REQ_T, 'get project');
	const cond = {
		type: 'Ready', status: 'True', reason: 'Ready', message: 'Project is ready',
		lastTransitionTime: '2026-01-01T00:00:00Z',
	};
	cur.status = { conditions: [cond] };
	const upd = await within(custom.replaceClusterCustomObjectStatus({
		...gvp, name: 'j6', body: cur,
	}), REQ_T, 'replace project status');
	const rv = upd.metadata.resourceVersion;
	await waitFor(() => rec.events.find((e) => e.ev === 'update' && e.name === 'j6'), REQ_T,
		() => `an update callback for j6 (callbacks ${rec.summary()}, errors ${rec.errSummary()})`);
	const u = rec.events.find((e) => e.ev === 'update' && e.name === 'j6');
	const got = ((u.obj.status || {}).conditions || [])[0] || {};
	expect(u.rv === rv, () => `update callback at RV ${u.rv}, want ${rv}`);
	expect(['type', 'status', 'reason', 'message'].every((k) => got[k] === cond[k]),
		() => `update callback conditions ${JSON.stringify(u.obj.status)}, want ${JSON.stringify([cond])}`);
	const lists = listsOn(await simRequests(url, since), PROJECTS_PATH);
	expect(lists.length === 1, () => `${lists.length} project list requests, want 1`);
	expect(rec.errors.length === 0, () => `error callbacks: ${rec.errSummary()}`);
	return `update callback at ${rv} with Ready=True`;
}

// ---- driver --------------------------------------------------------------------------

const CHECKS = [
	['J1', checkJ1, []],
	['J2', checkJ2, []],
	['J3', checkJ3, []],
	['J4', checkJ4, []],
	['J5', checkJ5, []],
	['J6', checkJ6, []],
];

async function runCheck(client, binary, name, fn, extra) {
	const sim = new Kubesim(binary, extra);
	const ctx = { k8s: client.k8s, cleanups: [] };
	let why = null;
	let desc = '';
	try {
		ctx.url = await sim.start();
		ctx.kc = kubeConfig(client.k8s, ctx.url);
		desc = await within(fn(ctx), CHECK_DEADLINE, `${name} (watchdog)`);
	} catch (e) {
		why = errText(e);
	}
	for (const c of ctx.cleanups.reverse()) {
		try {
			await within(c(), REQ_T, 'cleanup');
		} catch (e) {
			why = why || `cleanup: ${errText(e)}`;
		}
	}
	const problems = await sim.stop();
	if (problems.length) why = [why, ...problems].filter(Boolean).join('; ');
	if (why) {
		console.log(`FAIL ${name}: ${why}`);
		return false;
	}
	console.log(`ok ${name} ${desc}`);
	return true;
}

async function main(argv) {
	let passed = 0;
	let failed = 0;
	const failAll = (why) => {
		for (const [name] of CHECKS) console.log(`FAIL ${name}: ${why}`);
		failed += CHECKS.length;
	};
	const only = argv.slice(1);
	const unknown = only.filter((n) => !CHECKS.some(([c]) => c === n));
	if (argv.length < 1 || unknown.length) {
		console.error('usage: node clientnode_test.mjs /path/to/kubesim [J1 ...]');
		failAll('no kubesim given');
	} else {
		let client = null;
		try {
			client = await loadClient();
		} catch (e) {
			failAll(`cannot load @kubernetes/client-node: ${e.message}`);
		}
		if (client !== null) {
			try {
				fs.accessSync(argv[0], fs.constants.X_OK);
			} catch {
				failAll(`${argv[0]} is not an executable kubesim`);
				client = null;
			}
		}
		if (client !== null) {
			console.log(`# @kubernetes/client-node ${client.version} (${client.dir}), ` +
				`node ${process.version}, kubesim ${argv[0]}`);
			for (const [name, fn, extra] of CHECKS) {
				if (only.length && !only.includes(name)) continue;
				if (await runCheck(client, argv[0], name, fn, extra)) passed++;
				else failed++;
			}
		}
	}
	console.log(`${passed} passed, ${failed} failed`);
	return failed ? 1 : 0;
}

// A check abandoned by its watchdog may still reject later: log it rather
// than let Node end the run without the summary line.
process.on('unhandledRejection', (e) => console.log(`# late error: ${errText(e)}`));

// Exit explicitly: keep-alive sockets and abandoned requests of a failed
// check must not keep the process alive.
main(process.argv.slice(2)).then((rc) => process.exit(rc), (e) => {
	console.log(`FAIL driver: ${errText(e)}`);
	console.log('0 passed, 1 failed');
	process.exit(1);
});
