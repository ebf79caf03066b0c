/*
 * sax_floor.c - the throughput floor for the parse benchmark.
 *
 * A bare libxml2 SAX2 push parser that does the least work any aggregate
 * report parser must do: count <record> elements and add up the digits of
 * <count>.  tests/bench/parse-bench.sh compares `dmarcd parse` against it,
 * so it has to stay a fair floor: it reads with read() in 64 KiB chunks and
 * sets XML_PARSE_NONET, exactly as a real SAX parser would, and nothing
 * more (no NOENT, DTDLOAD or HUGE; no caps either, since it only measures).
 *
 * Usage: sax_floor [FILE | -]		(no argument: standard input)
 *
 * Prints "records=N messages=M" on standard output.
 *
 * DIAGNOSTICS
 *	0 on success; 64 on a usage error; 65 when the input is not
 *	well-formed XML (libxml2's message is printed to standard error);
 *	66 when FILE cannot be opened; 74 on a read error.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#define SAX_FLOOR_CHUNK	(64 * 1024)

#define EX_OK		0
#define EX_USAGE	64
#define EX_DATAERR	65
#define EX_NOINPUT	66
#define EX_IOERR	74

struct floor_counts {
	uint64_t	record_count;
	uint64_t	message_count;
	uint64_t	count_value;	/* digits of the <count> being read */
	int		in_count;
};

static void	floor_start(void *, const xmlChar *, const xmlChar *,
		    const xmlChar *, int, const xmlChar **, int, int,
		    const xmlChar **);
static void	floor_end(void *, const xmlChar *, const xmlChar *,
		    const xmlChar *);
static void	floor_text(void *, const xmlChar *, int);
static int	floor_parse(int, const char *, struct floor_counts *);

static void
floor_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
    int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	struct floor_counts *counts = ctx;
	const char *name = (const char *)localname;

	if (strcmp(name, "record") == 0)
		counts->record_count++;
	else if (strcmp(name, "count") == 0) {
		counts->in_count = 1;
		counts->count_value = 0;
	}
}

static void
floor_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *uri)
{
	struct floor_counts *counts = ctx;

	if (counts->in_count) {
		counts->message_count += counts->count_value;
		counts->in_count = 0;
	}
}

/* Text may arrive in several calls (chunk borders), so digits accumulate. */
static void
floor_text(void *ctx, const xmlChar *text, int len)
{
	struct floor_counts *counts = ctx;
	int i;

	if (!counts->in_count)
		return;
	for (i = 0; i < len; i++)
		if (text[i] >= '0' && text[i] <= '9')
			counts->count_value = counts->count_value * 10 +
			    (uint64_t)(text[i] - '0');
}

/* floor_parse - push everything read from fd through the SAX handler. */
static int
floor_parse(int fd, const char *input_name, struct floor_counts *counts)
{
	static char chunk[SAX_FLOOR_CHUNK];
	xmlSAXHandler handler;
	xmlParserCtxtPtr parser;
	xmlErrorPtr xml_error;
	ssize_t nread;
	int status = EX_OK;

	memset(&handler, 0, sizeof(handler));
	handler.initialized = XML_SAX2_MAGIC;
	handler.startElementNs = floor_start;
	handler.endElementNs = floor_end;
	handler.characters = floor_text;
	handler.ignorableWhitespace = floor_text;

	parser = xmlCreatePushParserCtxt(&handler, counts, NULL, 0, input_name);
	if (parser == NULL) {
		fprintf(stderr, "sax_floor: %s: cannot create parser\n",
		    input_name);
		return EX_IOERR;
	}
	xmlCtxtUseOptions(parser, XML_PARSE_NONET);

	for (;;) {
		nread = read(fd, chunk, sizeof(chunk));
		if (nread == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "sax_floor: %s: read: %s\n",
			    input_name, strerror(errno));
			status = EX_IOERR;
			break;
		}
		if (nread == 0) {
			if (xmlParseChunk(parser, NULL, 0, 1) != 0)
				status = EX_DATAERR;
			break;
		}
		if (xmlParseChunk(parser, chunk, (int)nread, 0) != 0) {
			status = EX_DATAERR;
			break;
		}
	}
	if (status == EX_OK && !parser->wellFormed)
		status = EX_DATAERR;
	if (status == EX_DATAERR) {
		xml_error = xmlCtxtGetLastError(parser);
		if (xml_error != NULL && xml_error->message != NULL)
			fprintf(stderr, "sax_floor: %s: line %d: %s", input_name,
			    xml_error->line, xml_error->message);
		else
			fprintf(stderr, "sax_floor: %s: not well-formed XML\n",
			    input_name);
	}
	if (parser->myDoc != NULL)
		xmlFreeDoc(parser->myDoc);
	xmlFreeParserCtxt(parser);
	return status;
}

int
main(int argc, char *argv[])
{
	struct floor_counts counts;
	const char *input_name = "-";
	int fd = STDIN_FILENO;
	int status;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-' && argv[1][1] != '\0')) {
		fprintf(stderr, "usage: sax_floor [FILE | -]\n");
		return EX_USAGE;
	}
	if (argc == 2 && strcmp(argv[1], "-") != 0) {
		input_name = argv[1];
		fd = open(input_name, O_RDONLY);
		if (fd == -1) {
			fprintf(stderr, "sax_floor: %s: %s\n", input_name,
			    strerror(errno));
			return EX_NOINPUT;
		}
	}

	LIBXML_TEST_VERSION
	memset(&counts, 0, sizeof(counts));
	status = floor_parse(fd, input_name, &counts);
	if (fd != STDIN_FILENO)
		close(fd);
	xmlCleanupParser();
	if (status != EX_OK)
		return status;

	printf("records=%" PRIu64 " messages=%" PRIu64 "\n",
	    counts.record_count, counts.message_count);
	return EX_OK;
}
