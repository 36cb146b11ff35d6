/**
 * AWS resources of a mirror or farm cluster (shared by MirrorCluster and FarmCluster):
 * ENIs first (their addresses go into the agent configs), a security group per role, a private
 * bucket holding the agent bundle and each node's config, an instance profile that may read only
 * this cluster's objects, instances over >= 2 AZs (witness in a third), and an internal NLB whose
 * target groups probe the agent's /ready.
 */
import * as pulumi from "@pulumi/pulumi";
import { Instance } from "@pulumi/aws/ec2/instance";
import { NetworkInterface } from "@pulumi/aws/ec2/networkInterface";
import { SecurityGroup } from "@pulumi/aws/ec2/securityGroup";
import { InstanceProfile } from "@pulumi/aws/iam/instanceProfile";
import { Role } from "@pulumi/aws/iam/role";
import { RolePolicy } from "@pulumi/aws/iam/rolePolicy";
import { Listener } from "@pulumi/aws/lb/listener";
import { LoadBalancer } from "@pulumi/aws/lb/loadBalancer";
import { TargetGroup } from "@pulumi/aws/lb/targetGroup";
import { TargetGroupAttachment } from "@pulumi/aws/lb/targetGroupAttachment";
import { Bucket } from "@pulumi/aws/s3/bucket";
import { BucketObjectv2 } from "@pulumi/aws/s3/bucketObjectv2";
import { BucketPublicAccessBlock } from "@pulumi/aws/s3/bucketPublicAccessBlock";
import { SecurityGroupEgressRule } from "@pulumi/aws/vpc/securityGroupEgressRule";
import { SecurityGroupIngressRule } from "@pulumi/aws/vpc/securityGroupIngressRule";
import { ArgProblems, resolveClusterArgs, type ClusterDescription } from "../common/args";
import { loadAgentBundle } from "../common/bundle";
import { configHash, endpointOutputs, consoleUrl, plannedConfigs, type ClusterNode, type ClusterOutputs } from "../common/outputs";
import { clusterSecrets } from "../common/secrets";
import { planFirewall, planHealthProbe, planListeners, renderCloudInit, witnessName, type FirewallRule, type NodeFacts } from "../plan";
import type { ClusterKind } from "../spec/types";

/** A subnet; zone and CIDR as plain strings so the zone spread is checked before anything is created. */
export interface AwsSubnet {
  readonly subnetId: pulumi.Input<string>;
  readonly availabilityZone: string;
  /** The subnet's CIDR: the NLB's health checks come from its addresses in these subnets. */
  readonly cidrBlock: string;
}

export interface AwsClusterArgs {
  /** The cluster description, identical on every platform. */
  readonly cluster: ClusterDescription;
  readonly vpcId: pulumi.Input<string>;
  /** Node i is placed in subnets[i % subnets.length]; they must span at least 2 AZs. The NLB uses them too. */
  readonly subnets: readonly AwsSubnet[];
  /** Where the mirror's witness runs, ideally a third AZ. Required for a mirror unless cluster.witness is false. */
  readonly witnessSubnet?: AwsSubnet;
  /** Image of the nodes: must provide Node.js >= 20, curl >= 7.75, systemd (e.g. Amazon Linux 2023 + nodejs20). */
  readonly amiId: pulumi.Input<string>;
  /** Region of the bucket URL the nodes read. @default the stack's aws:region config */
  readonly region?: string;
  /** @default "t3.small" */
  readonly instanceType?: string;
  /** @default "t3.nano" (the witness only answers votes) */
  readonly witnessInstanceType?: string;
  /** EC2 key pair for SSH. @default none (use SSM Session Manager or add one) */
  readonly keyName?: pulumi.Input<string>;
  /** @default 20 */
  readonly rootVolumeSizeGiB?: number;
  /** @default dist/mirrorfarm-agent.js of this package */
  readonly agentBundlePath?: string;
  /** Tags added to every resource that takes tags. @default none */
  readonly tags?: Record<string, string>;
}

function checkSubnet(p: ArgProblems, path: string, s: unknown): AwsSubnet | undefined {
  if (typeof s !== "object" || s === null) {
    p.add(path, s, "{ subnetId, availabilityZone, cidrBlock } as plain strings", `set ${path} from your VPC's subnet`);
    return undefined;
  }
  const o = s as Record<string, unknown>;
  const subnetId = pulumi.Output.isInstance(o.subnetId) ? (o.subnetId as pulumi.Output<string>) : p.text(`${path}.subnetId`, o.subnetId, "subnet-0123456789abcdef0");
  const availabilityZone = p.text(`${path}.availabilityZone`, o.availabilityZone, "eu-west-1a");
  const cidrBlock = p.text(`${path}.cidrBlock`, o.cidrBlock, "10.0.1.0/24");
  return { subnetId, availabilityZone, cidrBlock };
}

export function buildAwsCluster(self: pulumi.ComponentResource, component: string, name: string, kind: ClusterKind, args: AwsClusterArgs): ClusterOutputs {
  const p = new ArgProblems();
  const subnets = Array.isArray(args.subnets) ? args.subnets.map((s, i) => checkSubnet(p, `subnets[${i}]`, s)).filter((s) => s !== undefined) : [];
  if (!Array.isArray(args.subnets) || args.subnets.length === 0) p.add("subnets", args.subnets, "a non-empty list of subnets in at least 2 AZs", "list one private subnet per AZ");
  const witnessSubnet = args.witnessSubnet === undefined ? undefined : checkSubnet(p, "witnessSubnet", args.witnessSubnet);
  const region = args.region ?? new pulumi.Config("aws").get("region") ?? "";
  if (!region) p.add("region", args.region, "an AWS region", "set region, or the stack config aws:region");
  const nodeCount = Array.isArray(args.cluster?.nodes) ? args.cluster.nodes.length : 0;
  const nodeZones = subnets.length > 0 ? Array.from({ length: nodeCount }, (_, i) => subnets[i % subnets.length]!.availabilityZone) : [];
  const spec = resolveClusterArgs(component, name, kind, args.cluster, {
    platform: "aws", nodeZones, witnessPlaced: witnessSubnet !== undefined, ...(witnessSubnet ? { witnessZone: witnessSubnet.availabilityZone } : {}),
    supportsVipAddress: false, placementArg: "subnets", witnessArg: "witnessSubnet",
  }, p);
  const bundle = loadAgentBundle("agentBundlePath", args.agentBundlePath);
  const opts = { parent: self };
  const tags = { ...args.tags, "mirrorfarm:cluster": spec.clusterName };
  const placeFor = (i: number) => subnets[i % subnets.length]!;

  // Security groups: members and witness; rules from the plan.
  const nodeSg = new SecurityGroup(`${name}-nodes`, { vpcId: args.vpcId, description: `mirrorfarm ${spec.clusterName} nodes`, tags }, opts);
  const witnessSg = spec.witness ? new SecurityGroup(`${name}-witness`, { vpcId: args.vpcId, description: `mirrorfarm ${spec.clusterName} witness`, tags }, opts) : undefined;
  const ingress = (rule: FirewallRule, port: number, source: { referencedSecurityGroupId?: pulumi.Input<string>; cidrIpv4?: string }, suffix: string) =>
    new SecurityGroupIngressRule(`${name}-${rule.name}-${rule.protocol}-${port}${suffix}`, {
      securityGroupId: rule.to === "witness" ? witnessSg!.id : nodeSg.id,
      ipProtocol: rule.protocol, fromPort: port, toPort: port, description: rule.description, ...source, tags,
    }, opts);
  for (const rule of planFirewall(spec)) {
    for (const port of rule.ports) {
      if (rule.from.kind === "members") ingress(rule, port, { referencedSecurityGroupId: nodeSg.id }, "");
      // NLB health checks come from the load balancer's own addresses inside the node subnets.
      else if (rule.from.kind === "probers") [...new Set(subnets.map((s) => s.cidrBlock))].forEach((cidr, i) => ingress(rule, port, { cidrIpv4: cidr }, `-${i}`));
      else rule.from.cidrs.forEach((cidr, i) => ingress(rule, port, { cidrIpv4: cidr }, `-${i}`));
    }
  }
  // Egress: the object store endpoint, peers and the witness.
  for (const [role, sg] of [["nodes", nodeSg], ["witness", witnessSg]] as const) {
    if (sg) new SecurityGroupEgressRule(`${name}-${role}-egress`, { securityGroupId: sg.id, ipProtocol: "-1", cidrIpv4: "0.0.0.0/0", description: "mirrorfarm nodes reach S3, peers and the witness", tags }, opts);
  }

  // Addresses first: ENIs exist before instances, so the configs can name every member.
  const enis = spec.nodes.map((n, i) => new NetworkInterface(`${name}-${n.name}-eni`, { subnetId: placeFor(i).subnetId, securityGroups: [nodeSg.id], description: `mirrorfarm ${spec.clusterName} ${n.name}`, tags }, opts));
  const wName = witnessName(spec.clusterName);
  const witnessEni = witnessSubnet && witnessSg ? new NetworkInterface(`${name}-witness-eni`, { subnetId: witnessSubnet.subnetId, securityGroups: [witnessSg.id], description: `mirrorfarm ${spec.clusterName} witness`, tags }, opts) : undefined;
  const nodeFacts = pulumi.all(enis.map((e) => e.privateIp)).apply((ips) => spec.nodes.map((n, i): NodeFacts => ({ name: n.name, address: ips[i]!, zone: placeFor(i).availabilityZone })));
  const witnessFacts = witnessEni ? witnessEni.privateIp.apply((ip): NodeFacts => ({ name: wName, address: ip, zone: witnessSubnet!.availabilityZone })) : undefined;

  const secrets = clusterSecrets(name, spec.clusterName, [...spec.nodes.map((n) => n.name), ...(witnessEni ? [wName] : [])], self);
  const configs = plannedConfigs(spec, nodeFacts, witnessFacts, { mode: "probe" }, secrets);

  // Artifacts: a private bucket per cluster; keys under the cluster name.
  const bucket = new Bucket(`${name}-artifacts`, { forceDestroy: true, tags }, opts);
  new BucketPublicAccessBlock(`${name}-artifacts`, { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true }, opts);
  const prefix = `mirrorfarm/${spec.clusterName}`;
  const bundleKey = `${prefix}/mirrorfarm-agent.js`;
  new BucketObjectv2(`${name}-agent-bundle`, { bucket: bucket.id, key: bundleKey, source: new pulumi.asset.FileAsset(bundle.path), contentType: "application/javascript", tags }, opts);
  const allNodes = [...spec.nodes.map((n) => n.name), ...(witnessEni ? [wName] : [])];
  const configObjects = allNodes.map((node) =>
    new BucketObjectv2(`${name}-${node}-config`, {
      bucket: bucket.id, key: `${prefix}/${node}.json`, content: configs.apply((c) => c[node] ?? ""), contentType: "application/json", serverSideEncryption: "AES256", tags,
    }, opts));

  // Least privilege: read this cluster's objects, nothing else.
  const role = new Role(`${name}-node`, {
    assumeRolePolicy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }] }),
    description: `mirrorfarm ${spec.clusterName} nodes: read the agent bundle and config`, tags,
  }, opts);
  new RolePolicy(`${name}-read-artifacts`, {
    role: role.id,
    policy: bucket.arn.apply((arn) => JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${arn}/${prefix}/*`] }] })),
  }, opts);
  const profile = new InstanceProfile(`${name}-node`, { role: role.name, tags }, opts);

  const instance = (node: string, eni: NetworkInterface, type: string) =>
    new Instance(`${name}-${node}`, {
      ami: args.amiId,
      instanceType: type,
      primaryNetworkInterface: { networkInterfaceId: eni.id },
      iamInstanceProfile: profile.name,
      ...(args.keyName ? { keyName: args.keyName } : {}),
      // IMDSv2 only, one hop: containers on the node cannot borrow its role.
      metadataOptions: { httpTokens: "required", httpPutResponseHopLimit: 1, httpEndpoint: "enabled" },
      rootBlockDevice: { encrypted: true, volumeSize: args.rootVolumeSizeGiB ?? 20, volumeType: "gp3" },
      userData: bucket.bucket.apply((b) => renderCloudInit({
        node,
        bundle: { platform: "aws", bucket: b, key: bundleKey, region },
        config: { platform: "aws", bucket: b, key: `${prefix}/${node}.json`, region },
      })),
      tags: { ...tags, Name: `${spec.clusterName}-${node}` },
    }, { parent: self, dependsOn: configObjects });
  const instances = spec.nodes.map((n, i) => instance(n.name, enis[i]!, args.instanceType ?? "t3.small"));
  if (witnessEni) instance(wName, witnessEni, args.witnessInstanceType ?? "t3.nano");

  // Internal NLB: one target group per listener, health check GET /ready on the admin port.
  const probe = planHealthProbe(spec, "aws");
  const nlb = new LoadBalancer(`${name}-nlb`, {
    internal: true, loadBalancerType: "network", subnets: [...new Set(subnets.map((s) => s.subnetId))], enableCrossZoneLoadBalancing: true, tags,
  }, opts);
  for (const l of planListeners(spec)) {
    const proto = l.protocol.toUpperCase();
    const tg = new TargetGroup(`${name}-${l.protocol}-${l.port}`, {
      vpcId: args.vpcId, port: l.port, protocol: proto, targetType: "instance",
      healthCheck: {
        enabled: true, protocol: "HTTP", path: probe.path, port: String(probe.port), matcher: "200",
        interval: probe.intervalSeconds, timeout: probe.timeoutSeconds, healthyThreshold: probe.healthyThreshold, unhealthyThreshold: probe.unhealthyThreshold,
      },
      // A farm keeps each client on one node; a mirror has one healthy target anyway.
      ...(kind === "farm" ? { stickiness: { enabled: true, type: "source_ip" } } : {}),
      // Connections to a node that stopped being ready end quickly instead of after 300 s.
      deregistrationDelay: 10,
      ...(proto === "TCP" ? { connectionTermination: true } : {}),
      tags,
    }, opts);
    instances.forEach((inst, i) => new TargetGroupAttachment(`${name}-${l.protocol}-${l.port}-${spec.nodes[i]!.name}`, { targetGroupArn: tg.arn, targetId: inst.id, port: l.port }, opts));
    new Listener(`${name}-${l.protocol}-${l.port}`, { loadBalancerArn: nlb.arn, port: l.port, protocol: proto, defaultActions: [{ type: "forward", targetGroupArn: tg.arn }], tags }, opts);
  }

  const nodes = pulumi.all([nodeFacts, witnessFacts]).apply(([n, w]) => [
    ...n.map((x): ClusterNode => ({ name: x.name, address: x.address, zone: x.zone ?? "", role: "member" })),
    ...(w ? [{ name: w.name, address: w.address, zone: w.zone ?? "", role: "witness" } as ClusterNode] : []),
  ]);
  return {
    ...endpointOutputs(spec, secrets, nlb.dnsName),
    nodes,
    consoleUrl: consoleUrl(nodes, spec.adminPort),
    agentConfigHash: configHash(configs),
  };
}
