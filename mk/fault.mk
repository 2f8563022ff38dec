# Fault injection (issue #12 item 5): the long set. `make test` runs the quick set with the
# workspace's tests; `make fault` runs many seeds over every drill and the full storm (1,000
# alarm steps over 50 services) and prints one summary line, then a thousand concurrent alarms
# over a hundred services against moto (minutes: the emulator serialises every request). FIREBREAK_FAULT_SEEDS=N seeds
# (default 20); FIREBREAK_FAULT_SHRINK=1 also shrinks the first violation of each invariant to a
# minimal set of faults; target/fault.log has the run, target/fault-violations.txt every
# violation.

FIREBREAK_FAULT_SEEDS ?= 20

.PHONY: fault

fault: venv
	@mkdir -p target
	@rc=0; FIREBREAK_FAULT_SEEDS=$(FIREBREAK_FAULT_SEEDS) FIREBREAK_FAULT_REPORT=$(abspath target/fault-violations.txt) \
	  $(CARGO) test -q -p firebreak-core --test fault_injection long_set -- --ignored --nocapture \
	  > target/fault.log 2>&1 || rc=$$?; \
	grep -E '^long: fault: ' target/fault.log | sed -e 's/^long: //' -e 's/; [0-9]* calls.*//' || true; \
	if [ $$rc -ne 0 ]; then echo "make fault: failed, see target/fault.log" >&2; exit $$rc; fi
	$(CARGO) test -q -p firebreak-integration --test triage_flow a_thousand -- --ignored --nocapture 2>&1 \
	  | grep -E 'alarms over|test result' || { echo "make fault: the moto storm failed" >&2; exit 1; }
