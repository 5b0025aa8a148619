# tinypv: one x86-64 kernel image that boots natively (PVH), under KVM and
# as a Xen PV dom0, with every privileged operation behind a patchable pvop.
#
#   make            build build/tinypv.elf (+ .lst, .sym)
#   make run        boot it (PLATFORM=native|kvm|xen, APPEND="options", SMP=N)
#   make test       host unit tests + every boot configuration
#   make stress     the live-patching stress at full length on -smp 4 (~14 min)
#   make list-tests every in-kernel test (suite.name) and boot configuration
#   make bench      cycle/instruction tables and plots
#   make debug      QEMU halted with a gdb stub, and gdb attached
#   V=1             show the commands

BUILD    ?= build
PLATFORM ?= native
APPEND   ?=
SMP      ?=
PYTHON   ?= python3

ifeq ($(V),1)
Q :=
else
Q := @
endif

CC      := gcc
LD      := ld
OBJDUMP := objdump
NM      := nm

KCFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-pic \
	-fno-pie -fno-stack-protector -fno-strict-aliasing -mno-red-zone \
	-mno-sse -mno-sse2 -mno-mmx -mno-80387 -mcmodel=kernel \
	-fno-omit-frame-pointer -fno-asynchronous-unwind-tables \
	-fcf-protection=none -fno-tree-loop-distribute-patterns -nostdinc -isystem $(shell $(CC) -print-file-name=include) \
	-Iguest/include -Ipatch/include -Ipvops/include -Iscall/include -Ialt/include -I$(BUILD)/include -MMD -MP \
	-D__XEN_INTERFACE_VERSION__=__XEN_LATEST_INTERFACE_VERSION__
KASFLAGS := -D__ASSEMBLY__ -Iguest/include -Ipatch/include -Ipvops/include -Iscall/include -Ialt/include -MMD -MP -g
KLDFLAGS := -nostdlib -z max-page-size=4096 -z noexecstack --no-warn-rwx-segments

KSRC_C := $(wildcard guest/*.c guest/lib/*.c guest/xen/*.c patch/*.c pvops/*.c scall/*.c alt/*.c \
	tests/kernel/*.c)
KSRC_S := $(wildcard entry/*.S pvops/*.S guest/xen/*.S) \
	$(filter-out guest/kernel.ld.S,$(wildcard guest/*.S))
KOBJ   := $(patsubst %,$(BUILD)/%.o,$(basename $(KSRC_C) $(KSRC_S)))

# EXTRA_SITES=N links N generated functions of 32 ordinary pvop sites each
# (every C wrapper once; the entry ops swapgs, iret_user and sysret_user
# have only assembly sites)
# (scripts/gen_sites.py): the patch-cost test builds one with several times
# the normal site count, in its own BUILD directory.
EXTRA_SITES ?= 0
ifneq ($(EXTRA_SITES),0)
KOBJ += $(BUILD)/gen/sites.o
$(BUILD)/gen/sites.c: scripts/gen_sites.py Makefile
	@mkdir -p $(dir $@)
	$(Q)$(PYTHON) scripts/gen_sites.py $(EXTRA_SITES) $@
$(BUILD)/gen/sites.o: $(BUILD)/gen/sites.c | $(XEN_INC)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(KCFLAGS) -c $< -o $@
endif

KERNEL := $(BUILD)/tinypv.elf

all: $(KERNEL) $(BUILD)/tinypv.lst $(BUILD)/tinypv.sym check-sites

# Only the Xen public headers are visible to the kernel, never libc's ...
XEN_INC := $(BUILD)/include/xen/xen.h
$(XEN_INC):
	@mkdir -p $(BUILD)/include
	@test -f /usr/include/xen/xen.h || { echo "error: Xen public headers missing: run 'bash scripts/deps.sh build'"; exit 1; }
	$(Q)ln -sfn /usr/include/xen $(BUILD)/include/xen

# ... and the Linux UAPI headers for KVM's paravirtual ABI (asm/kvm_para.h:
# struct kvm_steal_time, the feature bits and MSRs; linux/kvm_para.h: the
# hypercall numbers), with the three directories they include from.
MULTIARCH := $(shell $(CC) -print-multiarch)
KVM_INC := $(BUILD)/include/asm/kvm_para.h
$(KVM_INC):
	@mkdir -p $(BUILD)/include
	@test -f /usr/include/$(MULTIARCH)/asm/kvm_para.h || { echo "error: Linux UAPI headers missing: run 'bash scripts/deps.sh build'"; exit 1; }
	$(Q)ln -sfn /usr/include/linux $(BUILD)/include/linux
	$(Q)ln -sfn /usr/include/asm-generic $(BUILD)/include/asm-generic
	$(Q)ln -sfn /usr/include/$(MULTIARCH)/asm $(BUILD)/include/asm

$(KOBJ): Makefile

# The boot patch loop (pvops/client.c) runs once per site; unrolling it
# measured 98 -> 91 guest instructions per site (icount, doc/patching.md).
$(BUILD)/pvops/client.o: KCFLAGS += -funroll-loops

# SCALL_ALIGN=6 (or 3) assembles every static call under .bundle_align_mode
# (scripts/scall_bundle.py): no site then crosses a 64-byte line (or an
# 8-byte word). make test builds such a kernel to count what it costs.
SCALL_ALIGN ?=
ifeq ($(SCALL_ALIGN),)
$(BUILD)/%.o: %.c | $(XEN_INC) $(KVM_INC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(KCFLAGS) -c $< -o $@
else
$(BUILD)/%.o: %.c scripts/scall_bundle.py | $(XEN_INC) $(KVM_INC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (static calls aligned to 2^$(SCALL_ALIGN))")
	$(Q)$(CC) $(KCFLAGS) -S $< -o $(@:.o=.s)
	$(Q)$(PYTHON) scripts/scall_bundle.py $(SCALL_ALIGN) $(@:.o=.s)
	$(Q)$(CC) -c $(@:.o=.s) -o $@
endif

$(BUILD)/%.o: %.S | $(XEN_INC) $(KVM_INC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AS      $<")
	$(Q)$(CC) $(KCFLAGS) $(KASFLAGS) -c $< -o $@

$(BUILD)/kernel.ld: guest/kernel.ld.S guest/include/layout.h patch/include/patch_abi.h
	@mkdir -p $(dir $@)
	$(Q)$(CC) -E -P -x c -D__ASSEMBLER__ -Iguest/include -Ipatch/include $< -o $@

# The link also depends on the list of objects: deleting or renaming a
# source changes the list (and so relinks) though no object is newer. The
# file is rewritten only when the list differs, so it never forces a link.
KOBJ_LIST := $(BUILD)/kernel.objects
$(KOBJ_LIST): FORCE
	@mkdir -p $(dir $@)
	$(Q)printf '%s\n' $(KOBJ) > $@.tmp && \
		if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

# Two links. Static-call sites are plain C calls to a trampoline, found in
# the first link's text (scripts/scall_sites.py, doc/static-calls.md); their
# records are linked into .patch.sites, after .text, so the second link
# moves no instruction. check-sites verifies the result.
KERNEL_PRE := $(BUILD)/tinypv.pre.elf
SCALL_SITES := $(BUILD)/gen/scall_sites
$(KERNEL_PRE): $(KOBJ) $(BUILD)/kernel.ld $(KOBJ_LIST)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(LD) $(KLDFLAGS) -T $(BUILD)/kernel.ld -o $@ $(KOBJ)

$(SCALL_SITES).S: $(KERNEL_PRE) scripts/scall_sites.py scripts/check_sites.py
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  SCALL   $@")
	$(Q)$(PYTHON) scripts/scall_sites.py --stats $(SCALL_SITES).stats $< $@

$(SCALL_SITES).o: $(SCALL_SITES).S
	@$(if $(Q),echo "  AS      $<")
	$(Q)$(CC) $(KCFLAGS) $(KASFLAGS) -c $< -o $@

$(KERNEL): $(KERNEL_PRE) $(SCALL_SITES).o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(LD) $(KLDFLAGS) -T $(BUILD)/kernel.ld -o $@ $(KOBJ) $(SCALL_SITES).o

$(BUILD)/tinypv.lst: $(KERNEL)
	$(Q)$(OBJDUMP) -d $< > $@

$(BUILD)/tinypv.sym: $(KERNEL)
	$(Q)$(NM) -n $< > $@

# ---- build-time check of the pvop site table and raw privileged insns ----
check-sites: $(KERNEL)
	@$(if $(Q),echo "  CHECK   $<")
	$(Q)$(PYTHON) scripts/check_sites.py $(KERNEL)

# ---- host unit tests: the real kernel sources compiled for user space ----
HCFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -DHOST_TEST -no-pie -fno-pie -Wl,-z,noexecstack \
	-Iguest/include -Ipatch/include -Ipvops/include -Iscall/include -Ialt/include -I$(BUILD)/include -Itests/host -MMD -MP \
	-D__XEN_INTERFACE_VERSION__=__XEN_LATEST_INTERFACE_VERSION__
HOST_TESTS := $(patsubst tests/host/%.c,$(BUILD)/host/%,$(wildcard tests/host/test_*.c))

$(BUILD)/host/test_format: tests/host/test_format.c guest/lib/format.c
$(BUILD)/host/test_insn: tests/host/test_insn.c patch/insn.c patch/reloc.c
$(BUILD)/host/test_acpi: tests/host/test_acpi.c guest/acpi.c
PVOP_HOST_SRC := pvops/plan.c patch/nops.c patch/reloc.c patch/insn.c \
	pvops/templates.S pvops/native.c pvops/kvm.c pvops/xen.c pvops/ops.c
$(BUILD)/host/test_patch: tests/host/test_patch.c $(PVOP_HOST_SRC)
# The alternative client over sites of its own section (test_alt.ld).
$(BUILD)/host/test_alt: tests/host/test_alt.c patch/engine.c patch/live.c \
	alt/alt.c patch/reloc.c patch/insn.c patch/nops.c tests/host/test_alt.ld
$(BUILD)/host/test_alt: HCFLAGS += -Wl,-T,tests/host/test_alt.ld
$(BUILD)/host/test_engine: tests/host/test_engine.c patch/engine.c \
	patch/live.c pvops/client.c pvops/saves.c $(PVOP_HOST_SRC)
$(BUILD)/host/test_live: tests/host/test_live.c patch/engine.c patch/live.c \
	patch/insn.c patch/nops.c
# Two threads race over a live call site (doc/static-calls.md).
$(BUILD)/host/test_xmodify: tests/host/test_xmodify.c patch/reloc.c patch/insn.c
$(BUILD)/host/test_xmodify: HCFLAGS += -pthread

$(BUILD)/host/%: tests/host/%.c | $(XEN_INC) $(KVM_INC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOSTCC  $@")
	$(Q)$(CC) $(HCFLAGS) -o $@ $(filter %.c %.S,$^)

$(BUILD)/host/bench_silicon: tests/host/bench_silicon.c $(PVOP_HOST_SRC) \
	guest/bench_thunks.S guest/bench_select.c Makefile
# Its inline asm calls code that pushes and calls, below %rsp, where user
# space may keep a red zone; NO_RED_ZONE tells the source the flag is on.
$(BUILD)/host/bench_silicon: HCFLAGS += -mno-red-zone -DNO_RED_ZONE

host-tests: $(HOST_TESTS)

deps-%:
	$(Q)bash scripts/deps.sh $*

# User strings reach the scripts through the environment, never through a
# recipe's shell text: APPEND='x $$(touch F)' stays text (make expands $$
# to $ as usual; the shell never sees the value).
run debug: export TINYPV_APPEND = $(APPEND)
run debug: export TINYPV_PLATFORM = $(PLATFORM)
run debug: export TINYPV_SMP = $(SMP)

run: deps-run $(KERNEL)
	$(Q)$(PYTHON) scripts/run.py

debug: deps-run $(KERNEL)
	$(Q)$(PYTHON) scripts/run.py --debug

HOST_TEST_ARGS = $(foreach t,$(HOST_TESTS),--host-test $(t)) \
	--host-test "$(PYTHON) tests/host/test_harness.py" \
	--host-test "$(PYTHON) tests/host/test_check_sites.py" \
	--host-test "$(PYTHON) tests/host/test_alt_select.py" \
	--host-test "$(PYTHON) tests/host/test_static_call_types.py" \
	--host-test "$(PYTHON) tests/host/test_scall_lines.py $(KERNEL) $(KERNEL_B6)" \
	--host-test "$(PYTHON) tests/host/test_patch_cost.py $(KERNEL) $(KERNEL_X4)"

# The same kernel with 64 x 16 generated sites (over 4x the normal count),
# for tests/host/test_patch_cost.py: boot patching must scale linearly.
KERNEL_X4 := $(BUILD)/x4/tinypv.elf
$(KERNEL_X4): FORCE
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/x4 EXTRA_SITES=64 $@

# The same kernel with every static call kept inside a 64-byte line, for
# tests/host/test_scall_lines.py (what the alignment costs, and that all
# sites become inlinable).
KERNEL_B6 := $(BUILD)/bundle6/tinypv.elf
$(KERNEL_B6): FORCE
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/bundle6 SCALL_ALIGN=6 $@

test: deps-test all host-tests $(KERNEL_X4) $(KERNEL_B6)
	$(Q)$(PYTHON) scripts/test.py $(HOST_TEST_ARGS)

# The rows make test shortens for time (scripts/test.py STRESS_CONFIGS).
stress: deps-test all
	$(Q)$(PYTHON) scripts/test.py --stress

list-tests: $(KERNEL)
	$(Q)$(PYTHON) scripts/test.py --list-tests $(HOST_TEST_ARGS)

bench: deps-bench all $(BUILD)/host/bench_silicon $(BUILD)/host/test_xmodify $(KERNEL_B6)
	$(Q)$(PYTHON) scripts/bench.py

clean:
	rm -rf $(BUILD)

FORCE:

.PHONY: all run debug test stress list-tests bench clean host-tests check-sites deps-% FORCE
.DELETE_ON_ERROR:

-include $(KOBJ:.o=.d) $(HOST_TESTS:=.d)
