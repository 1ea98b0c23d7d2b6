/* daemon_main.c - command line and configuration loading shared by the three daemons. */
#include "cm/daemon.h"
#include "cm/buf.h"
#include "cm/log.h"
#include "daemon_int.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_CHECK = 256, OPT_PRINT, OPT_REFERENCE };

static void usage(const struct cm_daemon_spec *spec, FILE *f)
{
	fprintf(
	    f,
	    "Usage: %s [-c FILE] [--check-config] [--print-config]\n"
	    "%s\n\n"
	    "  -c, --config FILE        read the configuration from FILE (default: the embedded\n"
	    "                           defaults, as if FILE were empty)\n"
	    "      --check-config       validate the configuration, print every error, exit\n"
	    "                           0 when it is valid and 2 when it is not\n"
	    "      --print-config       print the effective configuration (defaults filled in)\n"
	    "      --config-reference   print every configuration key as a Markdown table\n"
	    "  -V, --version            print the version and exit\n"
	    "  -h, --help               print this help and exit\n\n"
	    "Signals: SIGHUP reloads certificates and secrets (and log.level); SIGTERM or SIGINT\n"
	    "stops taking work, drains what is in flight and exits; a second one exits at once.\n"
	    "See %s(8).\n",
	    spec->name, spec->summary, spec->name);
}

static void print_errors(const struct cm_cfg_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		fprintf(stderr, "%s\n", errs->msgs[i]);
}

/* Load the configuration named on the command line (or the defaults) into a new struct. */
static int load_config(const struct cm_daemon_spec *spec, const char *path, void **out,
                       struct cm_cfg_errors *errs)
{
	void *cfg = calloc(1, spec->schema->size);
	int r;

	if (!cfg)
		return -ENOMEM;
	r = path ? cm_cfg_load_file(spec->schema, cfg, path, errs)
	         : cm_cfg_load_defaults(spec->schema, cfg, errs);
	if (r) {
		free(cfg);
		return r;
	}
	*out = cfg;
	return 0;
}

static int print_text(int (*fn)(const struct cm_cfg_schema *, const void *, struct cm_buf *),
                      const struct cm_cfg_schema *schema, const void *cfg)
{
	struct cm_buf b;
	int r;

	cm_buf_init(&b, 0);
	r = fn(schema, cfg, &b);
	if (r == 0 && b.data)
		fputs(b.data, stdout);
	cm_buf_free(&b);
	return r;
}

int cm_daemon_main(const struct cm_daemon_spec *spec, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, OPT_CHECK},
	    {"print-config", no_argument, NULL, OPT_PRINT},
	    {"config-reference", no_argument, NULL, OPT_REFERENCE},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cm_daemon d = {.spec = spec};
	struct cm_cfg_errors errs;
	int check = 0, print = 0, c, r;

	cm_log_setup(spec->name, CM_LOG_INFO, CM_LOG_TEXT, 2);
	while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d.config_path = optarg;
			break;
		case OPT_CHECK:
			check = 1;
			break;
		case OPT_PRINT:
			print = 1;
			break;
		case OPT_REFERENCE: {
			struct cm_buf b;

			cm_buf_init(&b, 0);
			r = cm_buf_puts(&b, "| key | type | default | description |\n"
			                    "|---|---|---|---|\n");
			r = r ? r : cm_cfg_describe(spec->schema, &b);
			if (r == 0 && b.data)
				fputs(b.data, stdout);
			cm_buf_free(&b);
			return r ? 1 : 0;
		}
		case 'V':
			printf("%s %s\n", spec->name, SUITE_VERSION);
			return 0;
		case 'h':
			usage(spec, stdout);
			return 0;
		default:
			usage(spec, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", spec->name,
		        argv[optind]);
		return 2;
	}

	cm_cfg_errors_init(&errs);
	r = load_config(spec, d.config_path, &d.cfg, &errs);
	if (r) {
		print_errors(&errs);
		if (errs.n == 0)
			fprintf(stderr, "%s: cannot load the configuration: %s\n", spec->name,
			        strerror(-r));
		cm_cfg_errors_free(&errs);
		return 2;
	}
	cm_cfg_errors_free(&errs);

	if (check || print) {
		if (print)
			r = print_text(cm_cfg_dump, spec->schema, d.cfg);
		else
			printf("%s: configuration is valid\n",
			       d.config_path ? d.config_path : "(embedded defaults)");
		cm_cfg_free(spec->schema, d.cfg);
		free(d.cfg);
		return r ? 1 : 0;
	}

	r = cm_daemon__run(&d);
	cm_cfg_free(spec->schema, d.cfg);
	free(d.cfg);
	return r;
}

int cm_daemon__load(const struct cm_daemon_spec *spec, const char *path, void **out)
{
	struct cm_cfg_errors errs;
	int r;

	cm_cfg_errors_init(&errs);
	r = load_config(spec, path, out, &errs);
	for (size_t i = 0; i < errs.n; i++)
		CM_LOGE("config", "%s", errs.msgs[i]);
	cm_cfg_errors_free(&errs);
	return r;
}
